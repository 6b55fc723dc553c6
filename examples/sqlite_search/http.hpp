// http.hpp - the small HTTP/1.1 layer of the sqlite_search server, on Node's http_parser.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SQLITE_SEARCH_HTTP_HPP
#define SQLITE_SEARCH_HTTP_HPP

#include <http_parser.h>

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sqlite_search::http {

/// One parsed request.
struct request {
  std::string method;
  std::string target;                       // as sent: "/search?q=a%20b"
  std::string path;                         // percent-decoded: "/search"
  std::map<std::string, std::string> query; // percent- and '+'-decoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = false;
};

/// Size limits; a request beyond them is refused with 413 and the connection closed.
struct limits {
  std::size_t max_header_bytes = 8 * 1024; // request line + headers
  std::size_t max_body_bytes = 8 * 1024;
  std::size_t max_headers = 64;
};

/// Parses requests from a byte stream, one at a time (pipelined requests wait their turn).
/**
 * feed() consumes bytes until a request is complete, then stops (the rest stays with the
 * caller for the next request). After an error the parser is unusable: answer error_status()
 * and close the connection, since the stream can no longer be framed.
 */
class request_parser {
public:
  explicit request_parser(limits l = {});
  request_parser(const request_parser&) = delete;
  request_parser& operator=(const request_parser&) = delete;

  /// Consumes bytes; returns how many were used (fewer than given once a request is complete).
  std::size_t feed(std::string_view bytes);

  bool complete() const noexcept { return complete_; }
  bool failed() const noexcept { return error_status_ != 0; }
  /// 400 (malformed) or 413 (too large) once failed().
  int error_status() const noexcept { return error_status_; }
  const std::string& error_message() const noexcept { return error_message_; }

  /// The complete request; resets the parser for the next one on the same connection.
  request take();

private:
  static int on_message_begin(http_parser*);
  static int on_url(http_parser*, const char*, std::size_t);
  static int on_header_field(http_parser*, const char*, std::size_t);
  static int on_header_value(http_parser*, const char*, std::size_t);
  static int on_headers_complete(http_parser*);
  static int on_body(http_parser*, const char*, std::size_t);
  static int on_message_complete(http_parser*);
  bool count_header_bytes(std::size_t n);
  void fail(int status, std::string message);

  limits limits_;
  http_parser parser_;
  http_parser_settings settings_;
  request current_;
  std::size_t header_bytes_ = 0;
  bool in_value_ = false;
  bool complete_ = false;
  int error_status_ = 0;
  std::string error_message_;
};

/// Decodes %XX escapes (and '+' as a space when `plus_is_space`); nullopt on a bad escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

/// Splits "a=1&b=x%20y" into decoded pairs; nullopt on a bad escape. A repeated key keeps the
/// first value.
std::optional<std::map<std::string, std::string>> parse_query(std::string_view query);

/// Percent-encodes everything but unreserved characters (for building URLs in clients).
std::string percent_encode(std::string_view text);

/// The reason phrase of the status codes this server uses.
std::string_view reason(int status);

/// Extra response headers, e.g. {{"Allow", "GET, HEAD"}}.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// A complete HTTP/1.1 response with Content-Length and Connection headers.
/**
 * With `head_only` (the answer to HEAD) the headers are those of the GET answer, Content-Length
 * included, but no body is sent: a body there would be read as the start of the next response.
 */
std::string make_response(int status, std::string_view content_type, std::string_view body, bool keep_alive,
                          const header_list& extra_headers = {}, bool head_only = false);

} // namespace sqlite_search::http

#endif // SQLITE_SEARCH_HTTP_HPP
