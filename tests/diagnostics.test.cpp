// Test that the header is self-contained.
#include <smartasync/diagnostics.hpp>

#include <smartasync/error.hpp>

#include "common/catch.hpp"

#include <stdexcept>
#include <string>

TEST_CASE("set_diagnostics_handler routes reports and returns the previous handler",
          "[diagnostics]") {
  std::string first, second;
  auto original = smartasync::set_diagnostics_handler(
      [&](const smartasync::diagnostic& d) { first = d.message; });
  smartasync::report({.kind = smartasync::diagnostic_kind::loop_blocked, .message = "one"});
  auto previous = smartasync::set_diagnostics_handler(
      [&](const smartasync::diagnostic& d) { second = fmt::format("{}", d); });
  smartasync::report({.kind = smartasync::diagnostic_kind::loop_blocked, .message = "two"});
  CHECK(first == "one");
  CHECK(second == "two");
  REQUIRE(previous);
  smartasync::set_diagnostics_handler(original);
}

TEST_CASE("a throwing diagnostics handler does not escape report", "[diagnostics]") {
  auto original = smartasync::set_diagnostics_handler(
      [](const smartasync::diagnostic&) { throw std::runtime_error("logger down"); });
  CHECK_NOTHROW(smartasync::report({.kind = smartasync::diagnostic_kind::loop_blocked,
                                    .message = "still delivered to stderr"}));
  smartasync::set_diagnostics_handler(original);
}

TEST_CASE("smartasync errors have a category and readable messages", "[error]") {
  smartasync::error_code ec = smartasync::error::queue_full;
  CHECK(ec.category().name() == std::string("smartasync"));
  CHECK(ec.message().find("full") != std::string::npos);
  CHECK(smartasync::error_code(smartasync::error::deadlock).message().find("deadlock") != std::string::npos);
  CHECK(ec != smartasync::error_code(smartasync::error::pool_stopped));
}
