// cli.hpp - CLI11 validators shared by the sqlite_search programs.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SQLITE_SEARCH_CLI_HPP
#define SQLITE_SEARCH_CLI_HPP

#include <CLI/CLI.hpp>
#include <asio/ip/address.hpp>

#include <string>

namespace sqlite_search {

/// Accepts a numeric IPv4 or IPv6 address, the only kind the server binds to.
inline CLI::Validator ip_address_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        asio::error_code ec;
        (void)asio::ip::make_address(text, ec);
        return ec ? "'" + text + "' is not an IPv4 or IPv6 address" : std::string();
      },
      "IP", "IP address");
}

} // namespace sqlite_search

#endif // SQLITE_SEARCH_CLI_HPP
