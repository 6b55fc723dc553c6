// fuzz/http_headers.fuzz.cpp - catalog_sync's Retry-After and Link parsing.
// Distributed under the Boost Software License, Version 1.0.
//
// Properties, not only "no crash":
//  * Retry-After, any bytes: a delay from 0 to max_retry_after_value, or "absent";
//  * Retry-After written by a formatter parses back: delta-seconds (with or without a decimal
//    fraction) to the millisecond, rounded up, and an HTTP-date in each of HTTP's three formats
//    (IMF-fixdate, RFC 850, asctime) to its distance from now, both capped at
//    max_retry_after_value and a date in the past meaning 0;
//  * Link, built from parts (targets of any bytes but '>', relations listed quoted or bare, in
//    any case, several per rel, other parameters with quoted text that may read "rel=next",
//    commas, semicolons or '<', whitespace between everything): the rel="next" and rel="last"
//    targets come back exactly when a link-value lists them, the first one when several do;
//  * Link, any bytes: a target that comes back is one written between '<' and '>'.
#define FUZZ_TARGET_NAME "http_headers"
#include "property.hpp"

#include "http_headers.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using catalog_sync::max_retry_after_value;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

// A fixed "now" (whole seconds), so that a date's distance is exact.
system_clock::time_point make_now(FuzzedDataProvider& in) {
  return system_clock::time_point(seconds(in.ConsumeIntegralInRange<std::int64_t>(1'000'000'000, 4'000'000'000)));
}

milliseconds capped(std::int64_t ms) {
  return std::clamp(milliseconds(ms), 0ms, max_retry_after_value);
}

void check_any_retry_after(FuzzedDataProvider& in) {
  const auto now = make_now(in);
  const std::string value = in.ConsumeRemainingBytesAsString();
  if (const auto d = catalog_sync::parse_retry_after(value, now))
    FUZZ_CHECK(*d >= 0ms && *d <= max_retry_after_value, "a Retry-After delay is between 0 and the cap");
}

void check_seconds(FuzzedDataProvider& in) {
  const std::uint64_t whole = in.ConsumeIntegralInRange<std::uint64_t>(0, 100'000'000'000);
  const int fraction_digits = in.ConsumeIntegralInRange<int>(0, 6);
  const std::uint64_t fraction = in.ConsumeIntegralInRange<std::uint64_t>(0, 999'999);
  std::string text = std::to_string(whole);
  std::int64_t expected_ms = static_cast<std::int64_t>(whole) * 1000; // at most 10^14
  if (fraction_digits > 0) {
    std::string digits = std::to_string(1'000'000 + fraction).substr(1, static_cast<std::size_t>(fraction_digits));
    text += '.' + digits;
    digits.resize(6, '0');
    const std::int64_t micros = std::stoll(digits);
    expected_ms += micros / 1000 + (micros % 1000 != 0 ? 1 : 0);
  }
  const std::string padded = std::string(in.ConsumeIntegralInRange<int>(0, 2), ' ') + text +
                             std::string(in.ConsumeIntegralInRange<int>(0, 2), '\t');
  const auto d = catalog_sync::parse_retry_after(padded, make_now(in));
  FUZZ_CHECK(d.has_value(), "a delta-seconds Retry-After parses");
  FUZZ_CHECK(*d == capped(expected_ms), "a delta-seconds Retry-After parses back to the millisecond, rounded up");
}

void check_date(FuzzedDataProvider& in) {
  const auto now = make_now(in);
  const int format = in.ConsumeIntegralInRange<int>(0, 2);
  // RFC 850 writes two-digit years (curl reads 71-99 as 19xx, 00-70 as 20xx).
  const std::time_t when = format == 1 ? in.ConsumeIntegralInRange<std::time_t>(31'536'000, 3'187'295'999) // 1971..2070
                                       : in.ConsumeIntegralInRange<std::time_t>(0, 253'402'300'799); // ..9999
  std::tm tm{};
  gmtime_r(&when, &tm);
  static constexpr std::array<const char*, 7> days{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 7> long_days{"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                        "Thursday", "Friday", "Saturday"};
  static constexpr std::array<const char*, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::array<char, 64> text{};
  const auto day = static_cast<std::size_t>(tm.tm_wday), month = static_cast<std::size_t>(tm.tm_mon);
  if (format == 0) // Sun, 06 Nov 1994 08:49:37 GMT
    std::snprintf(text.data(), text.size(), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[day], tm.tm_mday,
                  months[month], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  else if (format == 1) // Sunday, 06-Nov-94 08:49:37 GMT
    std::snprintf(text.data(), text.size(), "%s, %02d-%s-%02d %02d:%02d:%02d GMT", long_days[day], tm.tm_mday,
                  months[month], tm.tm_year % 100, tm.tm_hour, tm.tm_min, tm.tm_sec);
  else // Sun Nov  6 08:49:37 1994
    std::snprintf(text.data(), text.size(), "%s %s %2d %02d:%02d:%02d %04d", days[day], months[month],
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
  const auto d = catalog_sync::parse_retry_after(text.data(), now);
  const std::int64_t distance_s = static_cast<std::int64_t>(when) - system_clock::to_time_t(now);
  const std::int64_t cap_s = std::chrono::duration_cast<seconds>(max_retry_after_value).count();
  const milliseconds expected = distance_s >= cap_s ? max_retry_after_value : capped(distance_s * 1000);
  if (!d)
    std::fprintf(stderr, "date: %s\n", text.data());
  FUZZ_CHECK(d.has_value(), "an HTTP-date Retry-After parses");
  if (*d != expected)
    std::fprintf(stderr, "date: %s, parsed %lld ms, expected %lld ms\n", text.data(),
                 static_cast<long long>(d->count()), static_cast<long long>(expected.count()));
  FUZZ_CHECK(*d == expected, "an HTTP-date Retry-After parses back to its distance from now");
}

// --- Link

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string token(FuzzedDataProvider& in, std::size_t max) {
  std::string t;
  for (char c : in.ConsumeRandomLengthString(max))
    if (is_token_char(c))
      t += c;
  return t.empty() ? "x" : t;
}

std::string ows(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
  case 0: return "";
  case 1: return " ";
  case 2: return "\t";
  default: return "  ";
  }
}

std::string quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + '"';
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string relation(FuzzedDataProvider& in) {
  static constexpr std::array<const char*, 10> known{"next", "last", "prev", "first", "Next",
                                                     "LAST", "nextpage", "nex", "alternate", "self"};
  if (in.ConsumeIntegralInRange<int>(0, 4) == 0)
    return token(in, 8);
  return known[in.ConsumeIntegralInRange<std::size_t>(0, known.size() - 1)];
}

void check_link_from_parts(FuzzedDataProvider& in) {
  std::string header;
  std::optional<std::string> expected_next, expected_last;
  const int links = in.ConsumeIntegralInRange<int>(0, 4);
  for (int l = 0; l < links; ++l) {
    std::string target;
    for (char c : in.ConsumeRandomLengthString(48))
      if (c != '>')
        target += c;
    if (l > 0)
      header += ows(in) + "," + ows(in);
    header += '<' + target + '>';
    bool rel_seen = false, lists_next = false, lists_last = false;
    const int params = in.ConsumeIntegralInRange<int>(0, 3);
    for (int p = 0; p < params; ++p) {
      header += ows(in) + ";" + ows(in);
      if (in.ConsumeBool()) {
        // rel: one relation bare, or several quoted.
        std::vector<std::string> types;
        const bool quoted = in.ConsumeBool();
        const int n = quoted ? in.ConsumeIntegralInRange<int>(1, 3) : 1;
        std::string value;
        for (int t = 0; t < n; ++t) {
          types.push_back(relation(in));
          value += (t > 0 ? std::string(" ") + (in.ConsumeBool() ? " " : "") : std::string()) + types.back();
        }
        header += std::string(in.ConsumeBool() ? "rel" : "REL") + "=" + (quoted ? '"' + value + '"' : value);
        if (!rel_seen) { // only the first rel of a link-value counts (RFC 8288)
          rel_seen = true;
          for (const auto& t : types) {
            lists_next = lists_next || iequals(t, "next");
            lists_last = lists_last || iequals(t, "last");
          }
        }
      } else {
        // Another parameter: a bare token, a token value, or quoted text of any bytes.
        std::string name = in.ConsumeBool() ? token(in, 8) : "prel";
        if (iequals(name, "rel"))
          name = "x"; // (that would be a rel parameter)
        switch (in.ConsumeIntegralInRange<int>(0, 2)) {
        case 0: header += name; break;
        case 1: header += name + "=" + token(in, 8); break;
        default: header += name + "=" + quote(in.ConsumeRandomLengthString(32)); break;
        }
      }
    }
    if (lists_next && !expected_next)
      expected_next = target;
    if (lists_last && !expected_last)
      expected_last = target;
  }
  const auto next = catalog_sync::link_with_rel(header, "next");
  const auto last = catalog_sync::link_with_rel(header, "last");
  if (next != expected_next || last != expected_last)
    std::fprintf(stderr, "Link: %s\n", header.c_str());
  FUZZ_CHECK(next == expected_next, "Link gives the rel=\"next\" target exactly when one is listed");
  FUZZ_CHECK(last == expected_last, "Link gives the rel=\"last\" target exactly when one is listed");
}

void check_any_link(FuzzedDataProvider& in) {
  const std::string header = in.ConsumeRemainingBytesAsString();
  for (const char* rel : {"next", "last"})
    if (const auto target = catalog_sync::link_with_rel(header, rel))
      FUZZ_CHECK(header.find('<' + *target + '>') != std::string::npos, "a Link target is written between < and >");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange<int>(0, 5)) {
  case 0: check_any_retry_after(in); break;
  case 1: check_seconds(in); break;
  case 2: check_date(in); break;
  case 3: check_link_from_parts(in); break;
  default: check_any_link(in); break;
  }
  return 0;
}
