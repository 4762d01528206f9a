// NumPy's .npy and .npz formats, which is how users hand kiln inputs and
// reference outputs (np.save, np.savez, jax -> numpy). Format: the magic
// "\x93NUMPY", a version, a Python-dict header (descr, fortran_order, shape),
// then the raw data; .npz is a zip archive of .npy members.
//
// bf16 and the f8 types have no NumPy type code: ml_dtypes saves them as
// '<V2' and '<V1' (raw bytes). kiln reads those as "void2"/"void1" arrays and
// gives them their real type from the module's signature (reinterpret()).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "kiln/array/array.h"

namespace kiln::array {

Result<Array> parse_npy(std::string_view bytes);
std::string serialize_npy(const Array& a);

Result<Array> read_npy(const std::filesystem::path& path);
Status write_npy(const std::filesystem::path& path, const Array& a);

// Members of an .npz in archive order, keyed by name without ".npy". The
// archive's bytes, named in errors by `label`; read_npz reads a file.
Result<std::vector<std::pair<std::string, Array>>> parse_npz(std::string_view bytes, const std::string& label);
Result<std::vector<std::pair<std::string, Array>>> read_npz(const std::filesystem::path& path);
Status write_npz(const std::filesystem::path& path, const std::vector<std::pair<std::string, Array>>& members);

// Gives raw-bytes arrays ("void2") their element type when the sizes agree;
// an array that already has a type must have this one.
Status reinterpret(Array& a, const std::string& element, const std::string& what);

}  // namespace kiln::array
