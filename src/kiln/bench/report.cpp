#include "kiln/bench/report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "kiln/version.h"

namespace kiln::bench {

nlohmann::json to_json(const Report& r) {
  const Stats& s = r.stats;
  return {{"format", "kiln-bench-report"},
          {"format_version", 1},
          {"kiln_version", KILN_VERSION},
          {"module", r.module},
          {"function", r.function},
          {"device", r.device},
          {"warmup", r.warmup},
          {"batch", r.batch},
          {"concurrency", r.concurrency},
          {"stats",
           {{"samples", s.samples}, {"min_ms", s.min}, {"p50_ms", s.p50}, {"p90_ms", s.p90}, {"p99_ms", s.p99},
            {"max_ms", s.max}, {"mean_ms", s.mean}, {"stddev_ms", s.stddev}, {"runs_per_second", s.runs_per_second},
            {"items_per_second", s.items_per_second}}},
          {"spread_warning", s.spread_warning.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.spread_warning)},
          {"samples_ms", r.samples_ms}};
}

std::string to_markdown(const Report& r) {
  const Stats& s = r.stats;
  std::string out = fmt::format("### {} @{} on {}\n\n", r.module, r.function, r.device);
  out += "| samples | min | p50 | p90 | p99 | max | mean | std dev | runs/s |";
  out += r.batch > 1 ? " items/s |\n" : "\n";
  out += "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |";
  out += r.batch > 1 ? " ---: |\n" : "\n";
  out += fmt::format("| {} | {:.4f} ms | {:.4f} ms | {:.4f} ms | {:.4f} ms | {:.4f} ms | {:.4f} ms | {:.4f} ms | {:.1f} |",
                     s.samples, s.min, s.p50, s.p90, s.p99, s.max, s.mean, s.stddev, s.runs_per_second);
  out += r.batch > 1 ? fmt::format(" {:.1f} |\n", s.items_per_second) : "\n";
  out += fmt::format("\n{} warm-up run(s) discarded; batch {}, concurrency {}.\n", r.warmup, r.batch, r.concurrency);
  if (!s.spread_warning.empty()) out += "\n**Warning:** " + s.spread_warning + "\n";
  return out;
}

std::string to_svg(const Report& r) {
  const Stats& s = r.stats;
  const int width = 720, height = 360, left = 60, right = 20, top = 50, bottom = 50;
  const int bins = 40;
  double lo = s.min, hi = s.max > s.min ? s.max : s.min + 1e-9;
  std::vector<int> counts(bins, 0);
  for (double x : r.samples_ms) {
    int b = std::min(bins - 1, static_cast<int>((x - lo) / (hi - lo) * bins));
    ++counts[b];
  }
  int peak = std::max(1, *std::max_element(counts.begin(), counts.end()));
  double plot_w = width - left - right, plot_h = height - top - bottom;
  auto x_of = [&](double ms) { return left + (ms - lo) / (hi - lo) * plot_w; };
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"22\" font-size=\"15\">{} @{} on {}: latency of {} runs</text>\n",
      width, height, left, r.module, r.function, r.device, s.samples);
  for (int b = 0; b < bins; ++b) {
    double h = plot_h * counts[b] / peak;
    svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"#4a7fb5\"/>\n",
                       left + plot_w * b / bins + 0.5, top + plot_h - h, plot_w / bins - 1, h);
  }
  struct Mark {
    const char* label;
    double value;
    const char* color;
  } marks[] = {{"p50", s.p50, "#2a9d4a"}, {"p90", s.p90, "#e08a00"}, {"p99", s.p99, "#c0392b"}};
  int row = 0;
  for (const auto& m : marks) {
    double x = x_of(m.value);
    svg += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"{3}\" stroke-width=\"2\"/>\n",
                       x, top, top + plot_h, m.color);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" fill=\"{}\">{} {:.4f} ms</text>\n", x + 4, top + 14 + 14 * row++,
                       m.color, m.label, m.value);
  }
  svg += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2}\" y2=\"{2}\" stroke=\"black\"/>\n", left, width - right, top + plot_h);
  svg += fmt::format("<text x=\"{}\" y=\"{}\">{:.4f} ms</text>\n", left, height - bottom + 18, lo);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.4f} ms</text>\n", width - right, height - bottom + 18, hi);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">latency per run (runs per bar, tallest = {})</text>\n",
                     left + plot_w / 2, height - 12, peak);
  svg += "</svg>\n";
  return svg;
}

}  // namespace kiln::bench
