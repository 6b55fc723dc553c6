// http.cpp - request framing with http_parser, URL decoding, response building.
// Distributed under the Boost Software License, Version 1.0.
#include "http.hpp"

#include <fmt/format.h>

#include <cctype>
#include <climits>
#include <utility>

namespace sqlite_search::http {

request_parser::request_parser(limits l) : limits_(l) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  http_parser_settings_init(&settings_);
  settings_.on_message_begin = &on_message_begin;
  settings_.on_url = &on_url;
  settings_.on_header_field = &on_header_field;
  settings_.on_header_value = &on_header_value;
  settings_.on_headers_complete = &on_headers_complete;
  settings_.on_body = &on_body;
  settings_.on_message_complete = &on_message_complete;
}

std::size_t request_parser::feed(std::string_view bytes) {
  if (complete_ || failed() || bytes.empty())
    return 0;
  const std::size_t used = http_parser_execute(&parser_, &settings_, bytes.data(), bytes.size());
  const auto err = HTTP_PARSER_ERRNO(&parser_);
  if (err == HPE_PAUSED) { // on_message_complete paused us at the end of a request
    http_parser_pause(&parser_, 0);
    return used;
  }
  if (err != HPE_OK && !failed()) {
    // HPE_HEADER_OVERFLOW is http_parser's own 80 KB header ceiling.
    if (err == HPE_HEADER_OVERFLOW)
      fail(413, "request headers too large");
    else
      fail(400, fmt::format("malformed request: {}", http_errno_description(err)));
  }
  return used;
}

request request_parser::take() {
  request r = std::move(current_);
  current_ = {};
  complete_ = false;
  header_bytes_ = 0;
  in_value_ = false;
  return r;
}

void request_parser::fail(int status, std::string message) {
  if (!failed()) {
    error_status_ = status;
    error_message_ = std::move(message);
  }
}

bool request_parser::count_header_bytes(std::size_t n) {
  header_bytes_ += n;
  if (header_bytes_ > limits_.max_header_bytes) {
    fail(413, fmt::format("request line and headers exceed {} bytes", limits_.max_header_bytes));
    return false;
  }
  return true;
}

int request_parser::on_message_begin(http_parser* p) {
  auto& s = *static_cast<request_parser*>(p->data);
  s.current_ = {};
  s.header_bytes_ = 0;
  s.in_value_ = false;
  return 0;
}

int request_parser::on_url(http_parser* p, const char* at, std::size_t n) {
  auto& s = *static_cast<request_parser*>(p->data);
  if (!s.count_header_bytes(n))
    return 1;
  s.current_.target.append(at, n);
  return 0;
}

int request_parser::on_header_field(http_parser* p, const char* at, std::size_t n) {
  auto& s = *static_cast<request_parser*>(p->data);
  if (!s.count_header_bytes(n + 4)) // ": " and CRLF
    return 1;
  if (s.in_value_ || s.current_.headers.empty()) {
    if (s.current_.headers.size() == s.limits_.max_headers) {
      s.fail(413, fmt::format("more than {} request headers", s.limits_.max_headers));
      return 1;
    }
    s.current_.headers.emplace_back();
    s.in_value_ = false;
  }
  s.current_.headers.back().first.append(at, n);
  return 0;
}

int request_parser::on_header_value(http_parser* p, const char* at, std::size_t n) {
  auto& s = *static_cast<request_parser*>(p->data);
  if (!s.count_header_bytes(n))
    return 1;
  s.in_value_ = true;
  s.current_.headers.back().second.append(at, n);
  return 0;
}

int request_parser::on_headers_complete(http_parser* p) {
  auto& s = *static_cast<request_parser*>(p->data);
  // content_length is ULLONG_MAX when absent (chunked bodies are checked in on_body).
  if (p->content_length != ULLONG_MAX && p->content_length > s.limits_.max_body_bytes) {
    s.fail(413, fmt::format("request body exceeds {} bytes", s.limits_.max_body_bytes));
    return -1;
  }
  s.current_.method = http_method_str(static_cast<http_method>(p->method));
  s.current_.keep_alive = http_should_keep_alive(p) != 0;

  http_parser_url url;
  http_parser_url_init(&url);
  const auto& target = s.current_.target;
  if (http_parser_parse_url(target.data(), target.size(), 0, &url) != 0 || !(url.field_set & (1 << UF_PATH))) {
    s.fail(400, "malformed request target");
    return -1;
  }
  auto field = [&](int f) {
    return std::string_view(target).substr(url.field_data[f].off, url.field_data[f].len);
  };
  auto path = percent_decode(field(UF_PATH), false);
  auto query = (url.field_set & (1 << UF_QUERY)) ? parse_query(field(UF_QUERY))
                                                  : std::optional<std::map<std::string, std::string>>(std::in_place);
  if (!path || !query) {
    s.fail(400, "malformed percent-encoding in the request target");
    return -1;
  }
  s.current_.path = std::move(*path);
  s.current_.query = std::move(*query);
  return 0;
}

int request_parser::on_body(http_parser* p, const char* at, std::size_t n) {
  auto& s = *static_cast<request_parser*>(p->data);
  if (s.current_.body.size() + n > s.limits_.max_body_bytes) {
    s.fail(413, fmt::format("request body exceeds {} bytes", s.limits_.max_body_bytes));
    return 1;
  }
  s.current_.body.append(at, n);
  return 0;
}

int request_parser::on_message_complete(http_parser* p) {
  auto& s = *static_cast<request_parser*>(p->data);
  s.complete_ = true;
  http_parser_pause(p, 1); // one request at a time: the caller answers before we read on
  return 0;
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

} // namespace

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size())
        return std::nullopt;
      const int hi = hex_value(text[i + 1]);
      const int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0)
        return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::optional<std::map<std::string, std::string>> parse_query(std::string_view query) {
  std::map<std::string, std::string> params;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty())
      continue;
    const auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
    if (!key || !value)
      return std::nullopt;
    params.emplace(std::move(*key), std::move(*value));
  }
  return params;
}

std::string percent_encode(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~')
      out.push_back(c);
    else
      out += fmt::format("%{:02X}", u);
  }
  return out;
}

std::string_view reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 202: return "Accepted";
  case 400: return "Bad Request";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 413: return "Content Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Unknown";
  }
}

std::string make_response(int status, std::string_view content_type, std::string_view body, bool keep_alive,
                          const header_list& extra_headers, bool head_only) {
  std::string text = fmt::format("HTTP/1.1 {} {}\r\n"
                                 "Server: smartasync-sqlite-search\r\n"
                                 "Content-Type: {}\r\n"
                                 "Content-Length: {}\r\n"
                                 "Connection: {}\r\n",
                                 status, reason(status), content_type, body.size(),
                                 keep_alive ? "keep-alive" : "close");
  for (const auto& [name, value] : extra_headers)
    text += fmt::format("{}: {}\r\n", name, value);
  text += "\r\n";
  if (!head_only)
    text += body;
  return text;
}

} // namespace sqlite_search::http
