#include "kiln/serve/job_request.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace kiln::serve {

Result<JobRequest> read_job_request(const nlohmann::json& doc) {
  if (!doc.is_object()) return fail(Code::kInvalidArgument, "the job request is not a JSON object");
  JobRequest r;
  auto targets = doc.find("targets");
  if (targets == doc.end() || !targets->is_array()) {
    return fail(Code::kInvalidArgument, "at /targets: the job request names no list of targets");
  }
  for (size_t i = 0; i < targets->size(); ++i) {
    if (!(*targets)[i].is_string()) return fail(Code::kInvalidArgument, fmt::format("at /targets/{}: not a string", i));
    r.targets.push_back((*targets)[i].get<std::string>());
  }
  if (auto options = doc.find("options"); options != doc.end() && options->is_object()) {
    if (auto bind = options->find("bind"); bind != options->end()) {
      if (!bind->is_array()) return fail(Code::kInvalidArgument, "at /options/bind: not a list");
      r.bindings = bind->size();
    }
  }
  return r;
}

Result<job::JobOptions> compile_options(const nlohmann::json& request, std::chrono::seconds job_timeout) {
  auto read = KILN_TRY(job::options_from_json(request.value("options", nlohmann::json::object()),
                                              compile::Origin::kRemoteClient));
  double limit = std::min<double>(read.timeout_seconds.value_or(1e9), static_cast<double>(job_timeout.count()));
  read.options.timeout = std::chrono::milliseconds(static_cast<int64_t>(limit * 1000));
  return read;
}

std::string stored_json(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

// The first repeated element of `list` (compared as JSON text), if any.
Status no_duplicates(const nlohmann::json& list, const std::string& where, size_t limit, const char* what) {
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string text = stored_json(list[i]);
    if (auto [it, fresh] = seen.emplace(text, i); !fresh) {
      if (text.size() > 200) text = text.substr(0, 200) + "...";
      return fail(Code::kInvalidArgument, fmt::format("at {}/{}: {} repeats {}/{}; give each {} once", where, i, text,
                                                      where, it->second, what));
    }
    if (i + 1 > limit) {
      return fail(Code::kInvalidArgument, fmt::format("at {}: {} entries; at most {} {}s a job", where, list.size(),
                                                      limit, what));
    }
  }
  return {};
}

}  // namespace

Status check_request_limits(const nlohmann::json& doc) {
  if (!doc.is_object()) return {};
  if (auto t = doc.find("targets"); t != doc.end() && t->is_array()) {
    KILN_TRY_STATUS(no_duplicates(*t, "/targets", kMaxTargets, "target"));
  }
  if (auto o = doc.find("options"); o != doc.end() && o->is_object()) {
    if (auto b = o->find("bind"); b != o->end() && b->is_array()) {
      KILN_TRY_STATUS(no_duplicates(*b, "/options/bind", kMaxBindings, "binding"));
    }
  }
  return {};
}

nlohmann::json unit_json(const UnitResult& u, const std::string& job_id) {
  nlohmann::json out = {{"target", u.target}, {"ok", u.ok}};
  if (u.ok) {
    out.update({{"module", u.module}, {"metadata", u.metadata}, {"sha256", u.sha256}, {"size_bytes", u.size_bytes},
                {"cache_hit", u.cache_hit}, {"compile_seconds", u.compile_seconds}, {"worker", u.worker},
                {"links", {{"module", fmt::format("/v1/jobs/{}/artifacts/{}", job_id, u.module)},
                           {"metadata", fmt::format("/v1/jobs/{}/artifacts/{}", job_id, u.metadata)}}}});
    if (u.cache_hit) out["cache_source"] = u.cache_source;
  } else {
    out["error"] = {{"code", u.error_code}, {"message", u.error_message}};
  }
  if (!u.binding.is_null()) out["binding"] = u.binding;
  return out;
}

namespace {

Result<UnitResult> read_unit(const nlohmann::json& j, const std::string& at) {
  auto text = [&](const char* key, bool required) -> Result<std::string> {
    auto it = j.find(key);
    if (it == j.end() && !required) return std::string();
    if (it == j.end() || !it->is_string()) return fail(Code::kInvalidArgument, fmt::format("at {}/{}: not a string", at, key));
    return it->get<std::string>();
  };
  if (!j.is_object()) return fail(Code::kInvalidArgument, "at " + at + ": not an object");
  UnitResult u;
  u.target = KILN_TRY(text("target", true));
  if (!j.contains("ok") || !j["ok"].is_boolean()) return fail(Code::kInvalidArgument, "at " + at + "/ok: not a boolean");
  u.ok = j["ok"].get<bool>();
  u.binding = j.value("binding", nlohmann::json());
  if (u.ok) {
    u.module = KILN_TRY(text("module", true));
    u.metadata = KILN_TRY(text("metadata", true));
    u.sha256 = KILN_TRY(text("sha256", true));
    u.worker = KILN_TRY(text("worker", false));
    u.cache_source = KILN_TRY(text("cache_source", false));
    u.size_bytes = j.value("size_bytes", uint64_t{0});
    u.cache_hit = j.value("cache_hit", false);
    u.compile_seconds = j.value("compile_seconds", 0.0);
  } else if (auto e = j.find("error"); e != j.end() && e->is_object()) {
    u.error_code = e->value("code", "");
    u.error_message = e->value("message", "");
  }
  return u;
}

}  // namespace

Result<std::vector<UnitResult>> read_units(const nlohmann::json& units) {
  if (!units.is_array()) return fail(Code::kInvalidArgument, "the result is not a list of units");
  std::vector<UnitResult> out;
  for (size_t i = 0; i < units.size(); ++i) out.push_back(KILN_TRY(read_unit(units[i], fmt::format("/{}", i))));
  return out;
}

Status check_succeeded(const JobRequest& request, const nlohmann::json& units) {
  auto read = read_units(units);
  if (!read) return fail(Code::kFailedPrecondition, "its result is unreadable: " + read.error().message);
  std::map<std::string, size_t> finished;
  for (const auto& unit : *read) {
    if (!unit.ok) return fail(Code::kFailedPrecondition, "its unit for target " + unit.target + " did not finish");
    ++finished[unit.target];
  }
  size_t per_target = request.bindings ? request.bindings : 1;
  std::map<std::string, size_t> asked;
  for (const auto& t : request.targets) asked[t] += per_target;
  for (const auto& [target, n] : asked) {
    if (finished[target] != n) {
      return fail(Code::kFailedPrecondition, fmt::format("{} of its {} unit(s) for target {} finished",
                                                         finished[target], n, target));
    }
  }
  if (units.size() != request.planned_units()) {
    return fail(Code::kFailedPrecondition, fmt::format("its result holds {} units; the request plans {}", units.size(),
                                                       request.planned_units()));
  }
  return {};
}

}  // namespace kiln::serve
