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

TEST_CASE("a diagnostic formats as its message, with a string's format specification",
          "[diagnostics]") {
  const smartasync::diagnostic d{.kind = smartasync::diagnostic_kind::loop_blocked,
                                 .message = "loop blocked"};
  CHECK(fmt::format("{}", d) == "loop blocked");
  CHECK(fmt::format("[{:>14}]", d) == "[  loop blocked]");
  CHECK(fmt::format("[{:.4}]", d) == "[loop]");
  CHECK(fmt::format("{} and {:<6}|", d, smartasync::diagnostic{.message = "x"}) ==
        "loop blocked and x     |");
}

TEST_CASE("reports at one site are rate limited apart from reports at another", "[diagnostics]") {
  const auto first_site = smartasync::source_location::current();
  const auto second_site = smartasync::source_location::current();
  const auto kind = smartasync::diagnostic_kind::blocking_call_on_loop;
  // A site's first occurrence is reported, its next ones counted until the interval passes.
  CHECK(smartasync::detail::report_due(kind, first_site) == std::optional<std::uint64_t>(0));
  CHECK_FALSE(smartasync::detail::report_due(kind, first_site));
  CHECK_FALSE(smartasync::detail::report_due(kind, first_site));
  // Another line, another kind, or the same site seen from a second location: reported.
  CHECK(smartasync::detail::report_due(kind, second_site) == std::optional<std::uint64_t>(0));
  CHECK(smartasync::detail::report_due(smartasync::diagnostic_kind::loop_blocked, first_site) ==
        std::optional<std::uint64_t>(0));
  CHECK(smartasync::detail::report_due(kind, first_site, &second_site) ==
        std::optional<std::uint64_t>(0));
  CHECK_FALSE(smartasync::detail::report_due(kind, first_site, &second_site));
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
