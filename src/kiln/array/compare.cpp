#include "kiln/array/compare.h"

#include <cmath>

#include <fmt/format.h>

namespace kiln::array {

Tolerance default_tolerance(const std::string& element) {
  std::string e = element;
  if (e == "complex<f32>") e = "f32";
  if (e == "complex<f64>") e = "f64";
  if (e == "f64") return {1e-9, 1e-7, true};
  if (e == "f32") return {1e-5, 1e-4, true};
  if (e == "f16") return {1e-3, 1e-2, true};
  if (e == "bf16") return {1e-2, 2e-2, true};
  if (is_float(e)) return {1e-1, 2.5e-1, true};  // the f8 types: 2 or 3 mantissa bits
  return {0, 0, false};
}

namespace {

bool element_matches(double g, double w, const Tolerance& t, bool exact, NanPolicy nans) {
  if (std::isnan(g) || std::isnan(w)) return nans == NanPolicy::kEqual && std::isnan(g) && std::isnan(w);
  if (std::isinf(g) || std::isinf(w)) return g == w;
  if (exact) return g == w;
  return std::fabs(g - w) <= t.atol + t.rtol * std::fabs(w);
}

}  // namespace

Comparison compare(const Array& got, const Array& want, Tolerance tolerance, NanPolicy nans) {
  Comparison c;
  c.tolerance = tolerance;
  if (got.element != want.element) {
    c.problem = fmt::format("element type {} where {} was expected", got.element, want.element);
    return c;
  }
  if (got.shape != want.shape) {
    c.problem = fmt::format("shape ({}) where ({}) was expected", got.shape_text(), want.shape_text());
    return c;
  }
  bool exact = !is_float(got.element) && !is_complex(got.element);
  if (exact) c.tolerance = {0, 0, false};
  c.count = got.count();
  Tolerance effective = c.tolerance;
  if (effective.atol_scales_with_output) {
    double scale = 1;
    for (int64_t i = 0; i < c.count; ++i) {
      double w = std::hypot(element_value(want, i), element_imag(want, i));
      if (std::isfinite(w)) scale = std::max(scale, w);
    }
    effective.atol *= scale;
  }
  c.effective_atol = effective.atol;
  for (int64_t i = 0; i < c.count; ++i) {
    double g = element_value(got, i), w = element_value(want, i);
    double gi = element_imag(got, i), wi = element_imag(want, i);
    bool ok = element_matches(g, w, effective, exact, nans) && element_matches(gi, wi, effective, exact, nans);
    if (std::isfinite(g) && std::isfinite(w)) {
      double err = std::hypot(g - w, gi - wi);
      c.max_abs_error = std::max(c.max_abs_error, err);
      double mag = std::hypot(w, wi);
      if (mag > 0) c.max_rel_error = std::max(c.max_rel_error, err / mag);
    }
    if (!ok) {
      if (c.first_mismatch < 0) {
        c.first_mismatch = i;
        c.got_at_first = g;
        c.want_at_first = w;
      }
      ++c.mismatches;
    }
  }
  c.passed = c.mismatches == 0;
  return c;
}

double unit_roundoff(const std::string& element) {
  if (element == "f64") return std::ldexp(1.0, -53);
  if (element == "f32") return std::ldexp(1.0, -24);
  if (element == "f16") return std::ldexp(1.0, -11);
  if (element == "bf16") return std::ldexp(1.0, -8);
  if (element == "f8E5M2" || element == "f8E5M2FNUZ") return std::ldexp(1.0, -3);
  return std::ldexp(1.0, -4);  // the other f8 types have 3 mantissa bits (or fewer: f4, f6, e8m0)
}

namespace {

std::string shape_problem(const Array& a, const Array& b, const char* what) {
  if (a.shape == b.shape) return {};
  return fmt::format("shape ({}) where the {} has ({})", a.shape_text(), what, b.shape_text());
}

ErrorStats error_stats(const Array& got, const Array& reference) {
  ErrorStats s;
  double sum = 0;
  int64_t n = 0;
  for (int64_t i = 0; i < got.count(); ++i) {
    double w = element_value(reference, i), g = element_value(got, i);
    if (!std::isfinite(w)) continue;
    if (!std::isfinite(g)) {
      ++s.non_finite;
      continue;
    }
    double d = std::fabs(g - w);
    s.max_abs = std::max(s.max_abs, d);
    sum += d * d;
    ++n;
  }
  s.rms = n > 0 ? std::sqrt(sum / static_cast<double>(n)) : 0;
  return s;
}

}  // namespace

ReferenceCheck check_against_reference(const Array& got, const Array& framework, const Array& reference, double factor) {
  ReferenceCheck c;
  c.factor = factor;
  if (!is_float(got.element) || !is_float(reference.element)) {
    c.problem = fmt::format("the f32 reference check is for floating-point outputs; this one is {}", got.element);
    return c;
  }
  c.problem = shape_problem(got, reference, "f32 reference");
  if (c.problem.empty()) c.problem = shape_problem(framework, reference, "f32 reference (the framework's output)");
  if (!c.problem.empty()) return c;
  double scale = 0, squares = 0;
  int64_t finite = 0;
  for (int64_t i = 0; i < reference.count(); ++i) {
    double w = std::fabs(element_value(reference, i));
    if (!std::isfinite(w)) continue;
    scale = std::max(scale, w);
    squares += w * w;
    ++finite;
  }
  c.floor = unit_roundoff(got.element) * scale;
  c.rms_floor = finite > 0 ? unit_roundoff(got.element) * std::sqrt(squares / static_cast<double>(finite)) : 0;
  c.module = error_stats(got, reference);
  c.framework = error_stats(framework, reference);
  c.passed = c.module.non_finite <= c.framework.non_finite &&
             c.module.max_abs <= factor * std::max(c.framework.max_abs, c.floor) &&
             c.module.rms <= factor * std::max(c.framework.rms, c.rms_floor);
  return c;
}

}  // namespace kiln::array
