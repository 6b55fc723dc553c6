// control_reader.test.cpp - reading Debian package lists.
#include "catalog/control_reader.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using namespace catalog;

TEST_CASE("control_reader reads stanzas, continuation lines and skips the rest", "[catalog][control]") {
  std::istringstream in("Package: alpha\n"
                        "Version: 1.0-1\n"
                        "Tag: role::program,\n"
                        " scope::utility\n"
                        "Maintainer: Ada <ada@example.org>\n"
                        "section: utils\n"
                        "Description: first letter\n"
                        " A longer text\n"
                        " .\n"
                        " after an empty line\n"
                        "\n"
                        "\n"
                        "Version: 9\n"
                        "Description: a stanza without Package\n"
                        "\n"
                        "Package: beta\r\n"
                        "Description: no trailing blank line\r\n");
  control_reader reader(in);

  auto alpha = reader.next();
  REQUIRE(alpha);
  CHECK(*alpha == catalog_record{"alpha", "1.0-1", "utils", "Ada <ada@example.org>",
                                 "first letter\nA longer text\n\nafter an empty line"});
  auto beta = reader.next();
  REQUIRE(beta);
  CHECK(beta->name == "beta");
  CHECK(beta->description == "no trailing blank line");
  CHECK(beta->version.empty());
  CHECK_FALSE(reader.next());
  CHECK(reader.skipped() == 1);
}

TEST_CASE("control_reader batches", "[catalog][control]") {
  std::string text;
  for (int i = 0; i < 5; ++i)
    text += "Package: p" + std::to_string(i) + "\nDescription: d\n\n";
  std::istringstream in(text);
  control_reader reader(in);
  CHECK(reader.next_batch(3).size() == 3);
  CHECK(reader.next_batch(3).size() == 2);
  CHECK(reader.next_batch(3).empty());
}
