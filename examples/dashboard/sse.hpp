// dashboard/sse.hpp - the dashboard's JSON text and its Server-Sent Events framing.
// Distributed under the Boost Software License, Version 1.0.
//
// Events carry text from outside (a source's URL, a server's error quoted in a failure
// reason), so whatever the bytes, the output is valid: JSON on one line, one event per call.
#ifndef DASHBOARD_SSE_HPP
#define DASHBOARD_SSE_HPP

#include <nlohmann/json.hpp>

#include <string>

namespace dashboard {

/// `j` as compact JSON on one line. Invalid UTF-8 in a string (a reason quoting a server's
/// bytes) becomes U+FFFD instead of throwing while answering.
inline std::string json_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// One Server-Sent Event whose data is `event` as JSON: `data: {...}` and a blank line. JSON
/// escapes every control character inside strings, so the data is one line whatever it holds.
inline std::string sse_event(const nlohmann::json& event) { return "data: " + json_text(event) + "\n\n"; }

} // namespace dashboard

#endif // DASHBOARD_SSE_HPP
