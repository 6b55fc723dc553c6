// catalog_sync/http_client.hpp - a plain blocking HTTP GET on libcurl's easy interface.
// Distributed under the Boost Software License, Version 1.0.
//
// This is the kind of blocking client real applications already have: it knows nothing of
// Asio or smartasync. catalog_fetch.cpp wraps it once with smartasync::smart_async.
#ifndef CATALOG_SYNC_HTTP_CLIENT_HPP
#define CATALOG_SYNC_HTTP_CLIENT_HPP

#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace catalog_sync {

/// Limits of one request.
struct http_timeouts {
  /// TCP (and TLS) connection set-up.
  std::chrono::milliseconds connect{2000};
  /// The whole request, connection included.
  std::chrono::milliseconds total{10000};
};

/// Request options beyond the timeouts.
struct http_options {
  http_timeouts timeouts;
  /// Extra request headers ("Name: value").
  std::vector<std::string> headers;
  /// Ask for gzip (Accept-Encoding). Off saves CPU on both ends of a fast local link.
  bool compression = true;
  /// The largest body accepted, counted after decompression (a few kilobytes of gzip can
  /// inflate to gigabytes): past it the transfer is aborted and http_get throws
  /// response_too_large, so a request never holds more than about this much.
  std::size_t max_body_bytes = default_max_body_bytes;
  static constexpr std::size_t default_max_body_bytes = std::size_t{16} << 20; // 16 MiB
};

/// A complete HTTP response (any status).
struct http_response {
  long status = 0;
  /// Header names in lower case, in the order received (the final response's only).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  /// The first header named `name` (case-insensitive).
  std::optional<std::string> header(std::string_view name) const;
};

/// No HTTP response: connection refused or reset, timed out, body cut short.
class transport_error : public std::runtime_error {
public:
  transport_error(int curl_code, const std::string& what)
      : std::runtime_error(what), curl_code_(curl_code) {}
  /// libcurl's CURLcode.
  int curl_code() const noexcept { return curl_code_; }
  /// True when a connect or total timeout expired.
  bool timed_out() const noexcept;

private:
  int curl_code_;
};

/// The body grew past http_options::max_body_bytes (after decompression); the transfer was
/// aborted. Not a transport error: the same request would grow past it again.
class response_too_large : public std::runtime_error {
public:
  explicit response_too_large(std::size_t limit);
  std::size_t limit() const noexcept { return limit_; }

private:
  std::size_t limit_;
};

/// GETs `url` and returns the response, whatever its status.
/**
 * Blocking. Each calling thread keeps one libcurl easy handle (a thread_local), so the
 * keep-alive connections of a thread are reused by its next requests.
 *
 * @param stop A stop request aborts the transfer (within libcurl's progress interval) with
 *        std::system_error(std::errc::operation_canceled).
 * @throws transport_error when no complete response arrived.
 * @throws response_too_large when the body, decompressed, exceeds options.max_body_bytes.
 */
http_response http_get(std::stop_token stop, const std::string& url, const http_options& options);

} // namespace catalog_sync

#endif // CATALOG_SYNC_HTTP_CLIENT_HPP
