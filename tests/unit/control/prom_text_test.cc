// control/daemon/prom_text.h against prometheus::TextSerializer: every value
// and label written by hand must be the bytes the serializer writes.
#include "control/daemon/prom_text.h"

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace shaper::control {
namespace {

// One gauge sample `x{l="LABEL"} VALUE` by TextSerializer, without the
// HELP/TYPE lines.
std::string BySerializer(const std::string& label, double value) {
  prometheus::MetricFamily f;
  f.name = "x";
  f.type = prometheus::MetricType::Gauge;
  prometheus::ClientMetric& m = f.metric.emplace_back();
  m.label = {{"l", label}};
  m.gauge.value = value;
  const std::string text = prometheus::TextSerializer().Serialize({f});
  return text.substr(text.find('\n') + 1);  // after "# TYPE x gauge\n"
}

std::string ByHand(const std::string& label, double value) {
  std::string out = "x{l=\"";
  AppendLabelValue(out, label);
  out += "\"} ";
  AppendValue(out, value);
  out += '\n';
  return out;
}

TEST(PromText, ValuesAsTextSerializerWritesThem) {
  const double kInf = std::numeric_limits<double>::infinity();
  const std::vector<double> values = {
      0, 1, 7, 12345, 125000000, 47500000, 0.5, 0.125, 1.0 / 3, 2.5e-7, 1e-9, 123.456,
      // Whole numbers around where "%.16g" switches to an exponent.
      9007199254740992.0, 9999999999999998.0, 1e16, 1e17, 123456789012345678.0,
      static_cast<double>(std::numeric_limits<uint64_t>::max()), 1e300, 4.9e-324, -0.0, -1,
      -12345.5, std::nan(""), kInf, -kInf};
  for (double v : values) EXPECT_EQ(ByHand("a", v), BySerializer("a", v)) << v;
  // Every power of two and its neighbours over the range counters reach.
  for (int e = 0; e < 64; ++e) {
    const double p = std::ldexp(1.0, e);
    for (double v : {p - 1, p, p + 1, p / 8 + 0.125})
      EXPECT_EQ(ByHand("a", v), BySerializer("a", v)) << v;
  }
}

TEST(PromText, LabelEscapingAsTextSerializerDoesIt) {
  for (const std::string label : {"plain", "quo\"te", "back\\slash", "new\nline", "\\\"\n\\n", "",
                                  "tab\there", "utf-8 \xc3\xa9", "\"\"\\\\\n\n"}) {
    EXPECT_EQ(ByHand(label, 1), BySerializer(label, 1)) << label;
  }
}

}  // namespace
}  // namespace shaper::control
