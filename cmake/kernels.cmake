# Builds kiln's tensor-core kernels to PTX and writes them as C++
# initializers for src/kiln/tune/kernel.cpp: src/kiln/kernels/gemm_mma.cu
# (mma.sync, any GPU from sm_80) one variant per input type, output type,
# binding count and tile shape; src/kiln/kernels/gemm_wgmma.cu (wgmma, Hopper
# only: sm_90a) one per input type, output type and binding count. Run as a script:
#   cmake -DNVCC=... -DSOURCE=.../gemm_mma.cu -DSOURCE_HOPPER=.../gemm_wgmma.cu
#         -DOUTPUT=.../gemm_ptx.inc -DWORK=... -P kernels.cmake
# An empty NVCC writes no variants: kiln then builds without its kernels. An
# nvcc that cannot build for sm_90a (CUDA before 12.0) builds the others.
set(entries "")
set(variants "")
if(NVCC)
  foreach(input bf16 f16)
    foreach(output f32 same)
      foreach(bindings 2 3)
        foreach(shape 0 1 2 3)
          list(APPEND variants "${input}:${output}:${bindings}:${shape}")
        endforeach()
      endforeach()
    endforeach()
  endforeach()
endif()
foreach(variant IN LISTS variants)
  string(REPLACE ":" ";" parts "${variant}")
  list(GET parts 0 input)
  list(GET parts 1 output)
  list(GET parts 2 bindings)
  list(GET parts 3 shape)
  set(in_flag 0)
  if(input STREQUAL "bf16")
    set(in_flag 1)
  endif()
  set(out_flag 1)
  if(output STREQUAL "f32")
    set(out_flag 0)
  endif()
  set(threads 128)
  if(shape EQUAL 2)
    set(threads 256)
  endif()
  set(ptx ${WORK}/gemm_${input}_${output}_b${bindings}_s${shape}.ptx)
  set(source ${SOURCE})
  set(arch -arch=compute_80)
  set(sm 80)
  # The PTX ISA the text is given: IREE 3.13 writes 7.6 and kiln's mma.sync
  # kernel uses nothing newer, so any driver that loads the compiler's
  # kernels loads it; wgmma needs 8.0 (CUDA 12.0).
  set(isa 7.6)
  if(shape EQUAL 3)
    set(source ${SOURCE_HOPPER})
    set(arch -gencode=arch=compute_90a,code=compute_90a)
    set(sm 90)
    set(isa 8.0)
    set(threads 256)
  endif()
  if(shape EQUAL 3 AND hopper_skipped)
    continue()  # this nvcc cannot build for sm_90a: no need to ask again
  endif()
  execute_process(
    COMMAND ${NVCC} ${arch} -ptx -O3 -std=c++17 -DKILN_GEMM_IN=${in_flag} -DKILN_GEMM_OUT=${out_flag}
            -DKILN_GEMM_BINDINGS=${bindings} -DKILN_GEMM_SHAPE=${shape} ${source} -o ${ptx}
    RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 AND shape EQUAL 3 AND err MATCHES "compute_90a")
    if(NOT hopper_skipped)
      message(STATUS "nvcc cannot build for sm_90a, so kiln builds without its Hopper kernel: ${err}")
      set(hopper_skipped TRUE)
    endif()
    continue()
  elseif(NOT rc EQUAL 0)
    message(FATAL_ERROR "nvcc failed on ${source}: ${err}")
  endif()
  file(READ ${ptx} text)
  string(REGEX REPLACE "\n\\.version [0-9]+\\.[0-9]+\n" "\n.version ${isa}\n" text "${text}")
  string(APPEND entries "{\"${input}\", \"${output}\", ${bindings}, ${shape}, ${threads}, ${sm}, R\"kiln_ptx(${text})kiln_ptx\"},\n")
endforeach()
file(WRITE ${OUTPUT}.tmp "// Generated from src/kiln/kernels/gemm_mma.cu and gemm_wgmma.cu by cmake/kernels.cmake.\n${entries}")
file(RENAME ${OUTPUT}.tmp ${OUTPUT})
