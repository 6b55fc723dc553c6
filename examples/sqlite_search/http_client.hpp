// http_client.hpp - a minimal blocking HTTP/1.1 client over loopback, for tests and the benchmark.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SQLITE_SEARCH_HTTP_CLIENT_HPP
#define SQLITE_SEARCH_HTTP_CLIENT_HPP

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <http_parser.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>
#include <stdexcept>
#include <string>
#include <string_view>

namespace sqlite_search::testing {

struct http_response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = false;

  /// The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (std::equal(n.begin(), n.end(), name.begin(), name.end(),
                     [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) ==
                                                 std::tolower(static_cast<unsigned char>(b)); }))
        return v;
    return std::nullopt;
  }
};

/// One keep-alive connection; every read gives up after `timeout_seconds` (throws), so a
/// misbehaving server fails a test instead of hanging it.
class http_client {
public:
  explicit http_client(std::uint16_t port, int timeout_seconds = 10) : socket_(io_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
    socket_.set_option(asio::ip::tcp::no_delay(true));
    timeval tv{timeout_seconds, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  /// Sends raw bytes (a request, several pipelined ones, or garbage).
  void send(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes.data(), bytes.size())); }

  /// Sends `GET target` (keep-alive) and reads the answer.
  http_response get(std::string_view target) {
    send(std::string("GET ") + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
    return read_response();
  }

  /// Reads one response; throws std::system_error on EOF, reset or timeout before it is complete.
  /// `to_head`: the answer to a HEAD request, which has headers only (whatever Content-Length says).
  http_response read_response(bool to_head = false) {
    state s;
    s.to_head = to_head;
    http_parser parser;
    http_parser_init(&parser, HTTP_RESPONSE);
    parser.data = &s;
    http_parser_settings settings;
    http_parser_settings_init(&settings);
    settings.on_header_field = [](http_parser* p, const char* at, std::size_t n) {
      auto* st = static_cast<state*>(p->data);
      if (st->in_value || st->response.headers.empty())
        st->response.headers.emplace_back();
      st->in_value = false;
      st->response.headers.back().first.append(at, n);
      return 0;
    };
    settings.on_header_value = [](http_parser* p, const char* at, std::size_t n) {
      auto* st = static_cast<state*>(p->data);
      st->in_value = true;
      st->response.headers.back().second.append(at, n);
      return 0;
    };
    settings.on_headers_complete = [](http_parser* p) {
      return static_cast<state*>(p->data)->to_head ? 1 : 0; // 1: no body follows
    };
    settings.on_body = [](http_parser* p, const char* at, std::size_t n) {
      static_cast<state*>(p->data)->response.body.append(at, n);
      return 0;
    };
    settings.on_message_complete = [](http_parser* p) {
      auto* st = static_cast<state*>(p->data);
      st->done = true;
      st->response.status = static_cast<int>(p->status_code);
      st->response.keep_alive = http_should_keep_alive(p) != 0;
      http_parser_pause(p, 1);
      return 0;
    };
    for (;;) {
      if (!pending_.empty()) {
        const std::size_t used = http_parser_execute(&parser, &settings, pending_.data(), pending_.size());
        pending_.erase(0, used);
        if (s.done)
          return s.response;
        if (HTTP_PARSER_ERRNO(&parser) != HPE_OK)
          throw std::runtime_error("malformed HTTP response");
      }
      std::array<char, 8192> buffer;
      const std::size_t n = socket_.read_some(asio::buffer(buffer)); // throws on EOF/timeout
      pending_.append(buffer.data(), n);
    }
  }

  /// True when the server has closed the connection (reads EOF or a reset).
  bool closed_by_server() {
    std::array<char, 256> buffer;
    asio::error_code ec;
    socket_.read_some(asio::buffer(buffer), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

private:
  struct state {
    http_response response;
    bool done = false;
    bool to_head = false;
    bool in_value = false;
  };
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  std::string pending_;
};

} // namespace sqlite_search::testing

#endif // SQLITE_SEARCH_HTTP_CLIENT_HPP
