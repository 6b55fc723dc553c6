// fuzz/sse_json.fuzz.cpp - the dashboard's JSON text and Server-Sent Events framing.
// Distributed under the Boost Software License, Version 1.0.
//
// Properties, not only "no crash", for any JSON value (built from the input: nested arrays and
// objects, strings and keys of any bytes, numbers of every kind; or the input parsed as JSON):
//  * the event is valid framing: "data: " then one line (no CR or LF inside), then a blank
//    line, and nothing else;
//  * its data parses back as JSON: to the value itself when every string is valid UTF-8 and
//    every number finite, else to a value of the same shape (invalid bytes replaced);
//  * json_text is the event's data.
#define FUZZ_TARGET_NAME "sse_json"
#include "property.hpp"

#include "sse.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <string>

namespace {

using nlohmann::json;

json build(FuzzedDataProvider& in, int depth) {
  switch (in.ConsumeIntegralInRange<int>(0, depth < 4 ? 7 : 5)) {
  case 0: return nullptr;
  case 1: return in.ConsumeBool();
  case 2: return in.ConsumeIntegral<std::int64_t>();
  case 3: return in.ConsumeIntegral<std::uint64_t>();
  case 4: {
    const double d = in.ConsumeFloatingPoint<double>();
    return std::isfinite(d) ? d : 0.0; // (JSON has no NaN or infinity: nlohmann writes null)
  }
  case 5: return in.ConsumeRandomLengthString(64);
  case 6: {
    json a = json::array();
    for (int n = in.ConsumeIntegralInRange<int>(0, 4); n > 0; --n)
      a.push_back(build(in, depth + 1));
    return a;
  }
  default: {
    json o = json::object();
    for (int n = in.ConsumeIntegralInRange<int>(0, 4); n > 0; --n) {
      std::string key = in.ConsumeRandomLengthString(16);
      o[key] = build(in, depth + 1);
    }
    return o;
  }
  }
}

// Every number finite (text parsed as JSON may hold a number too large for a double).
bool all_finite(const json& j) {
  if (j.is_number_float())
    return std::isfinite(j.get<double>());
  if (j.is_structured()) {
    for (const auto& e : j)
      if (!all_finite(e))
        return false;
  }
  return true;
}

// The same shape: kinds, array lengths, and (objects aside, where two invalid keys may
// become the same replaced key) the same down to the leaves.
bool same_shape(const json& a, const json& b) {
  if (a.is_number() && b.is_number())
    return true;
  if (a.type() != b.type())
    return false;
  if (a.is_array()) {
    if (a.size() != b.size())
      return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!same_shape(a[i], b[i]))
        return false;
  }
  return true;
}

bool strict_dump_ok(const json& j) {
  try {
    (void)j.dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

void check(const json& value) {
  const std::string event = dashboard::sse_event(value);
  FUZZ_CHECK(event.size() >= 8 && event.compare(0, 6, "data: ") == 0, "an event starts with \"data: \"");
  FUZZ_CHECK(event.compare(event.size() - 2, 2, "\n\n") == 0, "an event ends with a blank line");
  const std::string data = event.substr(6, event.size() - 8);
  FUZZ_CHECK(data.find('\n') == std::string::npos && data.find('\r') == std::string::npos,
             "an event's data is one line, whatever the value holds");
  FUZZ_CHECK(data == dashboard::json_text(value), "an event's data is the value's JSON text");
  json back;
  try {
    back = json::parse(data);
  } catch (const json::exception&) {
    ::fuzz::property_violated(FUZZ_TARGET_NAME, "an event's data is valid JSON");
  }
  if (strict_dump_ok(value) && all_finite(value))
    FUZZ_CHECK(back == value, "an event's data parses back to the value");
  else
    FUZZ_CHECK(same_shape(value, back), "an event's data with invalid UTF-8 replaced parses back");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  if (in.ConsumeBool()) {
    check(build(in, 0));
  } else {
    const std::string text = in.ConsumeRemainingBytesAsString();
    const json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded())
      check(parsed);
  }
  return 0;
}
