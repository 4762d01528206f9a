// Where the service keeps a job's files: the one place that names them.
//
// On each host, under the data folder:
//   DATA/jobs/<id>/model.mlir|model.mlirbc   the upload (named by its content, never by the client)
//   DATA/jobs/<id>/out/                       the job's modules and metadata (the current run's)
// In the shared store of a fleet (keys):
//   uploads/<id>/<file>                        the upload, for workers on other hosts
//   jobs/<id>/<file>                           each artifact a unit recorded
#pragma once

#include <filesystem>
#include <string>

namespace kiln::serve::layout {

namespace fs = std::filesystem;

inline fs::path jobs_root(const fs::path& data_dir) { return data_dir / "jobs"; }
inline fs::path job_dir(const fs::path& data_dir, const std::string& id) { return jobs_root(data_dir) / id; }
inline fs::path job_out(const fs::path& data_dir, const std::string& id) { return job_dir(data_dir, id) / "out"; }
inline std::string upload_key(const std::string& id, const std::string& file) { return "uploads/" + id + "/" + file; }
inline std::string artifact_key(const std::string& id, const std::string& file) { return "jobs/" + id + "/" + file; }

}  // namespace kiln::serve::layout
