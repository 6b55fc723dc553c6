// http.test.cpp - request framing, limits and URL decoding of the server's HTTP layer.
#include "http.hpp"

#include <catch2/catch.hpp>

using namespace sqlite_search::http;

TEST_CASE("request_parser frames one request at a time", "[http]") {
  request_parser parser;
  const std::string two = "GET /search?q=a%20b+c&limit=5 HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /health HTTP/1.0\r\n\r\n";
  const std::size_t used = parser.feed(two);
  REQUIRE(parser.complete());
  CHECK(used < two.size());
  auto first = parser.take();
  CHECK(first.method == "GET");
  CHECK(first.path == "/search");
  CHECK(first.query.at("q") == "a b c");
  CHECK(first.query.at("limit") == "5");
  CHECK(first.keep_alive);
  CHECK(first.headers.at(0) == std::pair<std::string, std::string>("Host", "x"));

  CHECK(parser.feed(std::string_view(two).substr(used)) == two.size() - used);
  REQUIRE(parser.complete());
  auto second = parser.take();
  CHECK(second.path == "/health");
  CHECK_FALSE(second.keep_alive); // HTTP/1.0 without keep-alive
}

TEST_CASE("request_parser accepts a request split into single bytes", "[http]") {
  request_parser parser;
  const std::string text = "GET /search?q=x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
  for (char c : text)
    parser.feed(std::string_view(&c, 1));
  REQUIRE(parser.complete());
  CHECK(parser.take().body == "abc");
}

TEST_CASE("request_parser rejects garbage with 400 and oversize with 413", "[http]") {
  SECTION("garbage") {
    request_parser parser;
    parser.feed("HELLO THERE\r\n\r\n");
    CHECK(parser.failed());
    CHECK(parser.error_status() == 400);
  }
  SECTION("bad percent escape") {
    request_parser parser;
    parser.feed("GET /search?q=%ZZ HTTP/1.1\r\n\r\n");
    CHECK(parser.error_status() == 400);
  }
  SECTION("request line too long") {
    request_parser parser(limits{.max_header_bytes = 1024});
    parser.feed("GET /search?q=" + std::string(2000, 'a') + " HTTP/1.1\r\n\r\n");
    CHECK(parser.error_status() == 413);
  }
  SECTION("too many headers") {
    request_parser parser(limits{.max_headers = 4});
    std::string text = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 10; ++i)
      text += "X-" + std::to_string(i) + ": v\r\n";
    parser.feed(text + "\r\n");
    CHECK(parser.error_status() == 413);
  }
  SECTION("declared body too large") {
    request_parser parser(limits{.max_body_bytes = 100});
    parser.feed("POST /search HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n");
    CHECK(parser.error_status() == 413);
  }
  SECTION("chunked body too large") {
    request_parser parser(limits{.max_body_bytes = 10});
    parser.feed("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + std::string(32, 'z') + "\r\n");
    CHECK(parser.error_status() == 413);
  }
}

TEST_CASE("percent decoding and query strings", "[http]") {
  CHECK(percent_decode("a%2Fb%20c+d", false) == "a/b c+d");
  CHECK(percent_decode("a+b", true) == "a b");
  CHECK_FALSE(percent_decode("%", true));
  CHECK_FALSE(percent_decode("%4", true));
  CHECK_FALSE(percent_decode("%G1", true));
  auto q = parse_query("q=%22a+b%22&empty=&flag&q=second");
  REQUIRE(q);
  CHECK(q->at("q") == "\"a b\""); // the first of a repeated key wins
  CHECK(q->at("empty").empty());
  CHECK(q->at("flag").empty());
  CHECK(percent_decode(percent_encode("lib* \"x y\"/é"), true) == "lib* \"x y\"/é");
}

TEST_CASE("responses carry length and connection headers", "[http]") {
  const auto r = make_response(404, "application/json", "{}", false);
  CHECK(r.starts_with("HTTP/1.1 404 Not Found\r\n"));
  CHECK(r.find("Content-Length: 2\r\n") != std::string::npos);
  CHECK(r.find("Connection: close\r\n") != std::string::npos);
  CHECK(r.ends_with("\r\n\r\n{}"));
}

TEST_CASE("a HEAD answer has the GET answer's headers and no body", "[http]") {
  const auto r = make_response(405, "application/json", "{\"e\":1}", true, {{"Allow", "GET, HEAD"}}, true);
  CHECK(r.find("Content-Length: 7\r\n") != std::string::npos);
  CHECK(r.find("Allow: GET, HEAD\r\n") != std::string::npos);
  CHECK(r.ends_with("\r\n\r\n"));
}
