// catalog_sync/http_headers.hpp - what the sync reads from a page response's headers:
// Retry-After, and the relations of an RFC 8288 Link header (with a linked URL's parameters).
// Distributed under the Boost Software License, Version 1.0.
//
// Header values come from a server the sync does not control: any bytes give a result or
// "absent", never a crash, and never a delay the caller could not represent or wait out.
#ifndef CATALOG_SYNC_HTTP_HEADERS_HPP
#define CATALOG_SYNC_HTTP_HEADERS_HPP

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace catalog_sync {

/// The longest delay parse_retry_after() returns: a longer Retry-After reads as this long.
/// (Far beyond any sync's sync_options::max_retry_after, which then fails the page.)
inline constexpr std::chrono::milliseconds max_retry_after_value{std::chrono::hours(24 * 366)};

namespace headers_detail {

inline bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

inline std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back()))
    s.remove_suffix(1);
  return s;
}

inline char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

// delta-seconds, decimals tolerated ("1", "1.5", ".25"): rounded up to the millisecond, at
// most max_retry_after_value. Exact decimal arithmetic: "0.1" is 100 ms, not 101.
inline std::optional<std::chrono::milliseconds> parse_seconds(std::string_view s) noexcept {
  constexpr std::uint64_t cap_ms = static_cast<std::uint64_t>(max_retry_after_value.count());
  std::uint64_t seconds = 0; // saturates at cap_ms (< 2^35), so nothing below overflows
  std::size_t i = 0, digits = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++digits)
    seconds = std::min<std::uint64_t>(seconds * 10 + static_cast<std::uint64_t>(s[i] - '0'), cap_ms);
  std::uint64_t ms = std::min<std::uint64_t>(seconds * 1000, cap_ms);
  if (i < s.size() && s[i] == '.') {
    std::uint64_t fraction = 0, scale = 100;
    bool beyond_ms = false; // a non-zero digit past the thousandths: round up
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++digits) {
      const auto d = static_cast<std::uint64_t>(s[i] - '0');
      if (scale > 0) {
        fraction += d * scale;
        scale /= 10;
      } else if (d != 0) {
        beyond_ms = true;
      }
    }
    ms = std::min<std::uint64_t>(ms + fraction + (beyond_ms ? 1 : 0), cap_ms);
  }
  if (digits == 0 || i != s.size())
    return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(ms));
}

} // namespace headers_detail

/// Retry-After: delta-seconds (decimals tolerated, rounded up to the millisecond) or an
/// HTTP-date (any format libcurl reads), as a delay from `now`: never negative (a date in the
/// past means "now"), at most max_retry_after_value. nullopt when the value is neither.
inline std::optional<std::chrono::milliseconds>
parse_retry_after(std::string_view value,
                  std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
  value = headers_detail::trim_ows(value);
  if (value.empty() || value.find('\0') != std::string_view::npos)
    return std::nullopt; // (no header value holds a NUL; curl_getdate would stop at it)
  if (auto seconds = headers_detail::parse_seconds(value))
    return seconds;
  const std::string text(value);
  const time_t when = curl_getdate(text.c_str(), nullptr);
  if (when < 0)
    return std::nullopt;
  // In whole seconds first: a date centuries away must not overflow the clock's duration.
  const auto now_s = std::chrono::system_clock::to_time_t(now);
  const auto cap_s = std::chrono::duration_cast<std::chrono::seconds>(max_retry_after_value).count();
  if (when > now_s && static_cast<std::int64_t>(when) - static_cast<std::int64_t>(now_s) >= cap_s)
    return max_retry_after_value;
  if (when < now_s)
    return std::chrono::milliseconds(0);
  const auto delta = std::chrono::system_clock::from_time_t(when) - now;
  return std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(delta),
                    std::chrono::milliseconds(0), max_retry_after_value);
}

/// The target of the first link-value of an RFC 8288 Link header whose `rel` lists `rel`
/// (compared case-insensitively; `rel="a b"` lists several), or nullopt.
/**
 * Parameters are read as the RFC writes them: `name=token` or `name="quoted string"` (with
 * backslash escapes), so a quoted parameter that happens to contain "rel=next", a comma, a
 * semicolon or a `<` is text, not structure; a parameter named e.g. `prel` is not `rel`, and
 * a second `rel` in one link-value is ignored, as the RFC asks. A link-value that does not
 * start with `<` is skipped up to the next comma.
 */
inline std::optional<std::string> link_with_rel(std::string_view header, std::string_view rel) {
  using headers_detail::is_ows;
  std::size_t i = 0;
  const std::size_t n = header.size();
  auto skip_ows = [&] {
    while (i < n && is_ows(header[i]))
      ++i;
  };
  // Past a quoted string starting at i (the opening quote); returns its unescaped text.
  auto quoted = [&] {
    std::string text;
    for (++i; i < n && header[i] != '"'; ++i) {
      if (header[i] == '\\' && i + 1 < n)
        ++i;
      text += header[i];
    }
    if (i < n)
      ++i; // the closing quote
    return text;
  };
  // Skips to the next comma outside a quoted string (or the end).
  auto skip_to_comma = [&] {
    while (i < n && header[i] != ',') {
      if (header[i] == '"')
        quoted();
      else
        ++i;
    }
  };
  while (i < n) {
    skip_ows();
    if (i < n && header[i] == ',') {
      ++i;
      continue;
    }
    if (i >= n)
      break;
    if (header[i] != '<') {
      skip_to_comma();
      continue;
    }
    const std::size_t close = header.find('>', i + 1);
    if (close == std::string_view::npos)
      return std::nullopt;
    const std::string_view target = header.substr(i + 1, close - i - 1);
    i = close + 1;
    bool seen_rel = false, matches = false;
    for (;;) {
      skip_ows();
      if (i >= n || header[i] == ',')
        break;
      if (header[i] != ';') { // not a parameter: the rest of this link-value is ignored
        skip_to_comma();
        break;
      }
      ++i;
      skip_ows();
      const std::size_t name_start = i;
      while (i < n && !is_ows(header[i]) && header[i] != '=' && header[i] != ';' && header[i] != ',' &&
             header[i] != '"')
        ++i;
      const std::string_view name = header.substr(name_start, i - name_start);
      skip_ows();
      std::string value;
      if (i < n && header[i] == '=') {
        ++i;
        skip_ows();
        if (i < n && header[i] == '"') {
          value = quoted();
        } else {
          const std::size_t value_start = i;
          while (i < n && !is_ows(header[i]) && header[i] != ';' && header[i] != ',')
            ++i;
          value = std::string(header.substr(value_start, i - value_start));
        }
      }
      if (!seen_rel && headers_detail::iequals(name, "rel")) {
        seen_rel = true;
        // Relation types separated by whitespace.
        std::string_view types = value;
        while (!types.empty()) {
          const auto start = std::find_if_not(types.begin(), types.end(), is_ows);
          const auto end = std::find_if(start, types.end(), is_ows);
          if (start != end && headers_detail::iequals(std::string_view(&*start, static_cast<std::size_t>(end - start)), rel))
            matches = true;
          types.remove_prefix(static_cast<std::size_t>(end - types.begin()));
        }
      }
    }
    if (matches)
      return std::string(target);
  }
  return std::nullopt;
}

/// The value of query parameter `name` in `url` (as written, not percent-decoded), or nullopt.
inline std::optional<std::string> query_param(std::string_view url, std::string_view name) {
  auto q = url.find('?');
  if (q == std::string_view::npos)
    return std::nullopt;
  std::string_view rest = url.substr(q + 1);
  if (auto hash = rest.find('#'); hash != std::string_view::npos)
    rest = rest.substr(0, hash);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return std::string(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (amp == std::string_view::npos)
      break;
    rest.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

} // namespace catalog_sync

#endif // CATALOG_SYNC_HTTP_HEADERS_HPP
