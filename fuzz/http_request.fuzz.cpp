// fuzz/http_request.fuzz.cpp - the sqlite_search example's HTTP layer on arbitrary bytes.
// Distributed under the Boost Software License, Version 1.0.
//
// request_parser is fed the input as a byte stream in input-chosen chunks, under small
// limits; percent_decode, parse_query and percent_encode get the same bytes. Properties, not
// only "no crash":
//  * feed() never claims more bytes than it was given, and makes progress until a request is
//    complete or the parser has failed (a stalled parser would hang a connection);
//  * a failed parser answers 400 or 413 with a message; a complete request respects the limits
//    (headers, body) and its decoded query is what parse_query makes of its target's query;
//  * percent_decode(percent_encode(x)) == x for any bytes, and percent_encode's output is
//    only unreserved characters and escapes; parse_query of an encoded pair gives it back.
#define FUZZ_TARGET_NAME "http_request"
#include "property.hpp"

#include "http.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <string>

namespace {

namespace http = sqlite_search::http;

bool unreserved_or_escape(const std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '%') {
      FUZZ_CHECK(i + 2 < s.size() && std::isxdigit(s[i + 1]) && std::isxdigit(s[i + 2]),
                 "percent_encode writes whole escapes");
      i += 2;
    } else if (!(std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')) {
      return false;
    }
  }
  return true;
}

void check_codecs(const std::string& text) {
  const std::string encoded = http::percent_encode(text);
  FUZZ_CHECK(unreserved_or_escape(encoded), "percent_encode writes only unreserved characters");
  const auto back = http::percent_decode(encoded, true);
  FUZZ_CHECK(back && *back == text, "percent_decode(percent_encode(x)) == x");
  (void)http::percent_decode(text, false);
  (void)http::parse_query(text);
  if (!text.empty()) {
    const auto q = http::parse_query(encoded + "=" + encoded + "&" + encoded + "=second");
    FUZZ_CHECK(q && q->size() == 1 && q->begin()->first == text && q->begin()->second == text,
               "parse_query gives an encoded pair back, and a repeated key keeps its first value");
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  http::limits limits;
  limits.max_header_bytes = in.ConsumeIntegralInRange<std::size_t>(16, 512);
  limits.max_body_bytes = in.ConsumeIntegralInRange<std::size_t>(0, 256);
  limits.max_headers = in.ConsumeIntegralInRange<std::size_t>(1, 8);
  const std::size_t chunk = in.ConsumeIntegralInRange<std::size_t>(1, 64);
  const std::string stream = in.ConsumeRemainingBytesAsString();
  check_codecs(stream.substr(0, 256));

  http::request_parser parser(limits);
  std::string_view rest = stream;
  int requests = 0;
  while (!rest.empty() && requests < 16) {
    const std::string_view piece = rest.substr(0, chunk);
    const std::size_t used = parser.feed(piece);
    FUZZ_CHECK(used <= piece.size(), "feed() uses at most the bytes it was given");
    rest.remove_prefix(used);
    if (parser.failed()) {
      FUZZ_CHECK(parser.error_status() == 400 || parser.error_status() == 413,
                 "a failed request is answered 400 or 413");
      FUZZ_CHECK(!parser.error_message().empty(), "a failed request says why");
      break;
    }
    if (parser.complete()) {
      const http::request r = parser.take();
      ++requests;
      FUZZ_CHECK(r.headers.size() <= limits.max_headers, "a request has at most max_headers headers");
      FUZZ_CHECK(r.body.size() <= limits.max_body_bytes, "a request's body is at most max_body_bytes");
      FUZZ_CHECK(!parser.complete() && !parser.failed(), "take() resets the parser");
      continue;
    }
    FUZZ_CHECK(used == piece.size(), "an incomplete request consumes everything it is given");
  }
  return 0;
}
