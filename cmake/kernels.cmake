# Builds kiln's tensor-core kernels (src/kiln/kernels/gemm_mma.cu) to PTX, one
# variant per input type, output type, binding count and tile shape, and
# writes them as C++ initializers for src/kiln/tune/kernel.cpp. Run as a script:
#   cmake -DNVCC=... -DSOURCE=.../gemm_mma.cu -DOUTPUT=.../gemm_ptx.inc -DWORK=... -P kernels.cmake
# An empty NVCC writes no variants: kiln then builds without its kernels.
set(entries "")
set(variants "")
if(NVCC)
  foreach(input bf16 f16)
    foreach(output f32 same)
      foreach(bindings 2 3)
        foreach(shape 0 1 2)
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
  execute_process(
    COMMAND ${NVCC} -arch=compute_80 -ptx -O3 -std=c++17 -DKILN_GEMM_IN=${in_flag} -DKILN_GEMM_OUT=${out_flag}
            -DKILN_GEMM_BINDINGS=${bindings} -DKILN_GEMM_SHAPE=${shape} ${SOURCE} -o ${ptx}
    RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nvcc failed on ${SOURCE}: ${err}")
  endif()
  file(READ ${ptx} text)
  # IREE 3.13 writes PTX ISA 7.6; kiln's kernels use nothing newer, so any
  # driver that loads the compiler's kernels loads these.
  string(REGEX REPLACE "\n\\.version [0-9]+\\.[0-9]+\n" "\n.version 7.6\n" text "${text}")
  string(APPEND entries "{\"${input}\", \"${output}\", ${bindings}, ${shape}, ${threads}, R\"kiln_ptx(${text})kiln_ptx\"},\n")
endforeach()
file(WRITE ${OUTPUT}.tmp "// Generated from src/kiln/kernels/gemm_mma.cu by cmake/kernels.cmake.\n${entries}")
file(RENAME ${OUTPUT}.tmp ${OUTPUT})
