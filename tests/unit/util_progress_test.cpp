#include "kiln/util/progress.h"

#include <sstream>

#include <gtest/gtest.h>

namespace kiln::util {
namespace {

TEST(UtilProgress, FormatsDurationsShortly) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(59.4), "59s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(3720), "1h02m");
  EXPECT_EQ(format_duration(-1), "?");
}

TEST(UtilProgress, EstimatesTheTimeLeftFromTheAverage) {
  EXPECT_LT(eta_seconds(0, 10, 5), 0) << "unknown before the first item";
  EXPECT_DOUBLE_EQ(eta_seconds(2, 10, 4), 16);
  EXPECT_DOUBLE_EQ(eta_seconds(10, 10, 4), 0);
}

TEST(UtilProgress, DrawsABar) {
  EXPECT_EQ(progress_line(5, 20, 10, 8), "[##......]  5/20  elapsed 10s  ETA 30s");
  EXPECT_EQ(progress_line(0, 3, 0, 4), "[....] 0/3  elapsed 0s  ETA ?");
  EXPECT_EQ(progress_line(3, 3, 61, 4), "[####] 3/3  elapsed 1m01s  ETA 0s");
}

TEST(UtilProgress, PlainStreamsGetLinesNotRedraws) {
  std::ostringstream out;
  {
    Progress p(out, "[tune] ", 3, false);
    p.advance("a", true);
    p.advance("b");  // neither asked for nor the last: no line
    p.advance("c");
  }
  std::string text = out.str();
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_NE(text.find("[tune] [1/3] a"), std::string::npos) << text;
  EXPECT_EQ(text.find("] b"), std::string::npos) << text;
  EXPECT_NE(text.find("[tune] [3/3] c"), std::string::npos) << text;
  EXPECT_NE(text.find("ETA 0s"), std::string::npos) << text;
}

TEST(UtilProgress, TerminalsGetOneLineRedrawnInPlace) {
  std::ostringstream out;
  {
    Progress p(out, "", 2, true);
    p.advance("first");
    p.line("a note");
    p.advance("second");
  }
  std::string text = out.str();
  EXPECT_NE(text.find("\r[############............] 1/2"), std::string::npos) << text;
  EXPECT_NE(text.find("\r\x1b[Ka note\n"), std::string::npos) << text;
  EXPECT_NE(text.find("2/2"), std::string::npos);
  EXPECT_EQ(text.back(), '\n') << "the bar's line is ended";
}

}  // namespace
}  // namespace kiln::util
