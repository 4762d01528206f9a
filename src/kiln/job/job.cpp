#include "kiln/job/job.h"
#include "kiln/util/json.h"

#include <set>

#include <fmt/format.h>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "kiln/job/schema_text.h"
#include "kiln/util/file.h"
#include "kiln/util/strings.h"

namespace kiln::job {
namespace {

using nlohmann::json;

const valijson::Schema& compiled_schema() {
  static const auto schema = [] {
    auto s = std::make_unique<valijson::Schema>();
    json document = json::parse(kJobSchemaText);
    valijson::SchemaParser parser;
    valijson::adapters::NlohmannJsonAdapter adapter(document);
    parser.populateSchema(adapter, *s);
    return s;
  }();
  return *schema;
}

// valijson's context ["<root>", "[targets]", "[1]"] -> "/targets/1".
std::string to_pointer(const std::vector<std::string>& context) {
  std::string pointer;
  for (const auto& part : context) {
    if (part == "<root>") continue;
    std::string token = part;
    if (token.size() >= 2 && token.front() == '[' && token.back() == ']') token = token.substr(1, token.size() - 2);
    if (token.size() >= 2 && token.front() == '"' && token.back() == '"') token = token.substr(1, token.size() - 2);
    pointer += "/" + token;
  }
  return pointer.empty() ? "/" : pointer;
}

std::string found_value(const json& document, const std::string& pointer) {
  try {
    const json& value = pointer == "/" ? document : document.at(json::json_pointer(pointer));
    std::string text = value.dump();
    if (text.size() > 80) text = text.substr(0, 77) + "...";
    return text;
  } catch (const std::exception&) {
    return "nothing";
  }
}

Error invalid(const fs::path& file, const std::string& pointer, const std::string& message) {
  return Error{Code::kInvalidArgument, fmt::format("{}: at {}: {}", file.string(), pointer, message)};
}

// A name that is a plain file name: no folders, no "..".
bool is_plain_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

// "bind": [{"b": 8}, {"b": 32}] (checked by the schema). Names are in the
// object's (sorted) key order; the same binding twice would write one module
// twice.
Result<std::vector<mlir::Binding>> bindings_from_json(const json& list) {
  std::vector<mlir::Binding> out;
  std::set<std::string> slugs;
  for (const auto& entry : list) {
    mlir::Binding binding;
    for (const auto& [name, value] : entry.items()) {
      auto pair = KILN_TRY(mlir::parse_binding(name + "=" + std::to_string(value.get<int64_t>())));
      binding.push_back(std::move(pair));
    }
    if (!slugs.insert(mlir::binding_slug(binding)).second) {
      return fail(Code::kInvalidArgument, "bind lists " + entry.dump() + " twice");
    }
    out.push_back(std::move(binding));
  }
  return out;
}

}  // namespace

const char* schema_text() { return kJobSchemaText; }

std::vector<Violation> validate_schema(const json& document) {
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter adapter(document);
  std::vector<Violation> out;
  if (validator.validate(compiled_schema(), adapter, &results)) return out;
  std::set<std::string> seen;
  for (const auto& error : results) {
    std::string pointer = to_pointer(error.context);
    std::string message = error.description;
    // Strip valijson's trailing period, then say what was found there.
    if (!message.empty() && message.back() == '.') message.pop_back();
    message += "; found " + found_value(document, pointer);
    if (seen.insert(pointer + message).second) out.push_back({pointer, message});
  }
  return out;
}

Result<Job> load(const fs::path& file) {
  auto text = util::read_file(file);
  if (!text) return tl::unexpected(text.error().context("reading the job file"));
  return parse(*text, file);
}

namespace {

// The document, checked for depth, syntax (with line and column) and the
// schema.
Result<json> parse_document(std::string_view text, const fs::path& file) {
  // Bounded before anything recursive walks it.
  if (int depth = util::json_depth(text); depth > util::kMaxJsonDepth) {
    return fail(Code::kInvalidArgument, fmt::format("{}: the job nests arrays and objects more than {} levels deep; kiln "
                                                    "reads at most {}", file.string(), depth - 1, util::kMaxJsonDepth));
  }
  json document;
  try {
    document = json::parse(text);
  } catch (const json::exception& e) {
    // A syntax error or a number too large to hold. nlohmann reports the
    // byte offset of a syntax error; turn it into line and column.
    const auto* syntax = dynamic_cast<const json::parse_error*>(&e);
    if (!syntax) {
      std::string what = e.what();
      if (size_t close = what.find("] "); close != std::string::npos) what = what.substr(close + 2);
      return fail(Code::kInvalidArgument, fmt::format("{}: not valid JSON: {}", file.string(), what));
    }
    size_t offset = std::min<size_t>(syntax->byte, text.size());
    size_t line = 1 + std::count(text.begin(), text.begin() + offset, '\n');
    size_t last_nl = text.rfind('\n', offset ? offset - 1 : 0);
    size_t col = offset - (last_nl == std::string::npos ? 0 : last_nl + 1);
    std::string what = e.what();
    if (size_t colon = what.rfind(": "); colon != std::string::npos) what = what.substr(colon + 2);
    return fail(Code::kInvalidArgument, fmt::format("{}:{}:{}: not valid JSON: {}", file.string(), line, col, what));
  }

  auto violations = validate_schema(document);
  if (!violations.empty()) {
    std::vector<std::string> lines;
    for (const auto& v : violations) lines.push_back("  at " + v.pointer + ": " + v.message);
    return fail(Code::kInvalidArgument,
                fmt::format("{}: does not match the job schema (kiln schema prints it):\n{}", file.string(),
                            util::join(lines, "\n")));
  }
  return document;
}

// The inputs, each a regular file with a plain output name of its own.
Status read_inputs(const json& document, const fs::path& file, const fs::path& base, Job& job) {
  std::set<std::string> names;
  const json& inputs = document["inputs"];
  for (size_t i = 0; i < inputs.size(); ++i) {
    Input input;
    std::string pointer = fmt::format("/inputs/{}", i);
    std::string path = inputs[i].is_string() ? inputs[i].get<std::string>() : inputs[i]["path"].get<std::string>();
    input.path = (base / path).lexically_normal();
    input.name = inputs[i].is_object() && inputs[i].contains("name") ? inputs[i]["name"].get<std::string>()
                                                                     : compile::default_name(input.path);
    if (auto regular = util::expect_regular_file(input.path); !regular) {
      return tl::unexpected(invalid(file, pointer, fmt::format("input '{}': {}", path, regular.error().message)));
    }
    if (!is_plain_name(input.name)) {
      return tl::unexpected(invalid(file, pointer, "output name '" + input.name + "' must be a plain file name"));
    }
    if (!names.insert(input.name).second) {
      return tl::unexpected(invalid(file, pointer, fmt::format("two inputs share the output name '{}'; give one a "
                                                                 "\"name\"", input.name)));
    }
    job.inputs.push_back(std::move(input));
  }
  return {};
}

// The targets, resolved, none twice.
Status read_targets(const json& document, const fs::path& file, Job& job) {
  const json& targets = document["targets"];
  std::set<std::string> slugs;
  for (size_t i = 0; i < targets.size(); ++i) {
    auto t = target::resolve(targets[i].get<std::string>());
    if (!t) return tl::unexpected(invalid(file, fmt::format("/targets/{}", i), t.error().message));
    if (!slugs.insert(t->slug).second) {
      return tl::unexpected(invalid(file, fmt::format("/targets/{}", i),
                                    fmt::format("'{}' is the same target as an earlier entry ({})", t->spec, t->slug)));
    }
    job.targets.push_back(std::move(*t));
  }
  return {};
}

}  // namespace

Result<Job> parse(std::string_view text, const fs::path& file) {
  json document = KILN_TRY(parse_document(text, file));
  Job job;
  job.file = file;
  fs::path base = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  KILN_TRY_STATUS(read_inputs(document, file, base, job));
  KILN_TRY_STATUS(read_targets(document, file, job));
  if (document.contains("options")) {
    auto read = options_from_json(document["options"], compile::Origin::kLocalUser);
    if (read) {
      job.options = read->options;
      job.has_timeout = read->timeout_seconds.has_value();
      job.bindings = read->bindings;
    }
    if (!read) {
      return tl::unexpected(invalid(file, "/options", read.error().message));
    }
  }
  job.output_dir = (base / document.value("output_dir", std::string("out"))).lexically_normal();
  return job;
}

Result<JobOptions> options_from_json(const json& o, compile::Origin origin) {
  if (!o.is_object()) return fail(Code::kInvalidArgument, "the options are not an object");
  // The schema has checked every type; the reads cannot throw.
  JobOptions out;
  compile::Options& options = out.options;
  options.opt_level = o.value("opt_level", "");
  if (o.contains("data_tiling")) options.data_tiling = o["data_tiling"].get<bool>();
  options.precision = o.value("precision", "");
  options.invocation = o.value("invocation", "");
  options.use_tuning = o.value("tuning", true);
  options.keep_f64 = o.value("keep_f64", false);
  options.extra_flags = o.value("extra_flags", std::vector<std::string>{});
  if (o.contains("timeout_seconds")) {
    out.timeout_seconds = o["timeout_seconds"].get<double>();
    options.timeout = std::chrono::milliseconds(static_cast<int64_t>(*out.timeout_seconds * 1000));
  }
  if (o.contains("bind")) out.bindings = KILN_TRY(bindings_from_json(o["bind"]));
  KILN_TRY_STATUS(compile::validate(options, origin));
  return out;
}

}  // namespace kiln::job
