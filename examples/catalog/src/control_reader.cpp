// control_reader.cpp - Debian package lists to catalog_records.
// Distributed under the Boost Software License, Version 1.0.
#include "catalog/control_reader.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string_view>

namespace catalog {
namespace {

std::string_view trim(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!s.empty() && blank(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && blank(s.back()))
    s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

} // namespace

std::optional<catalog_record> control_reader::next() {
  catalog_record record;
  bool in_stanza = false;
  bool has_package = false;
  std::string* continued = nullptr; // the field continuation lines extend (Description only)

  while (std::getline(in_, line_)) {
    ++lines_;
    std::string_view line = line_;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);

    if (trim(line).empty()) { // a blank line ends the stanza
      if (!in_stanza)
        continue;
      if (has_package)
        return record;
      ++skipped_;
      record = {};
      in_stanza = has_package = false;
      continued = nullptr;
      continue;
    }
    in_stanza = true;
    if (line.front() == ' ' || line.front() == '\t') {
      if (continued) {
        auto text = line.substr(1);
        continued->push_back('\n');
        if (trim(text) != ".")
          continued->append(text);
      }
      continue;
    }
    continued = nullptr;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos)
      continue; // not a field; tolerate it rather than lose the stanza
    const auto field = line.substr(0, colon);
    const auto value = std::string(trim(line.substr(colon + 1)));
    if (iequals(field, "Package")) {
      record.name = value;
      has_package = !value.empty();
    } else if (iequals(field, "Version")) {
      record.version = value;
    } else if (iequals(field, "Section")) {
      record.section = value;
    } else if (iequals(field, "Maintainer")) {
      record.maintainer = value;
    } else if (iequals(field, "Description")) {
      record.description = value;
      continued = &record.description;
    }
  }
  if (in_stanza) {
    if (has_package)
      return record;
    ++skipped_;
  }
  return std::nullopt;
}

std::vector<catalog_record> control_reader::next_batch(std::size_t max) {
  std::vector<catalog_record> batch;
  while (batch.size() < max) {
    auto record = next();
    if (!record)
      break;
    batch.push_back(std::move(*record));
  }
  return batch;
}

std::vector<catalog_record> load_apt_catalog() {
  struct pipe_closer {
    void operator()(std::FILE* f) const noexcept { pclose(f); }
  };
  std::unique_ptr<std::FILE, pipe_closer> pipe(popen("apt-cache dumpavail 2>/dev/null", "r"));
  if (!pipe)
    throw std::runtime_error("cannot run apt-cache");
  std::string text;
  std::array<char, 1 << 16> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe.get()))
    text.append(buffer.data(), n);
  const int status = pclose(pipe.release());
  if (status != 0)
    throw std::runtime_error("apt-cache dumpavail failed (is apt available?)");

  std::istringstream in(std::move(text));
  control_reader reader(in);
  std::vector<catalog_record> records;
  while (auto record = reader.next())
    records.push_back(std::move(*record));
  if (records.empty())
    throw std::runtime_error("apt-cache dumpavail listed no packages (run apt-get update?)");
  return records;
}

} // namespace catalog
