// generator.cpp - a synthetic package catalogue that is the same everywhere.
// Distributed under the Boost Software License, Version 1.0.
#include "catalog/generator.hpp"

#include <fmt/format.h>

#include <array>
#include <string_view>

namespace catalog {
namespace {

// splitmix64: tiny, fast, and fully specified, unlike <random>'s distributions.
struct splitmix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  template <std::size_t N>
  std::string_view pick(const std::array<std::string_view, N>& words) {
    return words[next() % N];
  }
  unsigned below(unsigned n) { return static_cast<unsigned>(next() % n); }
};

constexpr std::array<std::string_view, 40> name_words{
    "audio", "video", "net", "http", "json", "xml", "sql", "crypto", "image", "font",
    "gtk", "qt", "python", "perl", "ruby", "rust", "go", "java", "lua", "tcl",
    "zip", "tar", "mail", "dns", "ssh", "tls", "usb", "gpu", "math", "text",
    "time", "log", "test", "doc", "data", "map", "game", "shell", "cloud", "kernel"};

constexpr std::array<std::string_view, 12> kinds{
    "dev", "tools", "utils", "doc", "common", "data", "bin", "plugins", "runtime", "server", "client", "dbg"};

constexpr std::array<std::string_view, 64> vocabulary{
    "library", "tool", "server", "client", "network", "protocol", "parser", "compiler",
    "interpreter", "database", "engine", "framework", "module", "plugin", "driver", "daemon",
    "utility", "toolkit", "interface", "binding", "extension", "backend", "frontend", "service",
    "asynchronous", "fast", "small", "portable", "secure", "simple", "modern", "lightweight",
    "streaming", "embedded", "graphical", "command-line", "scalable", "reliable", "concurrent", "generic",
    "audio", "video", "image", "text", "archive", "encryption", "compression", "search",
    "index", "cache", "queue", "scheduler", "editor", "viewer", "converter", "monitor",
    "files", "packets", "documents", "messages", "records", "streams", "events", "requests"};

constexpr std::array<std::string_view, 10> sections{
    "libs", "devel", "net", "utils", "admin", "web", "sound", "video", "graphics", "doc"};

constexpr std::array<std::string_view, 8> maintainers{
    "Ada Example <ada@example.org>",          "Brian Sample <brian@example.org>",
    "Chen Placeholder <chen@example.org>",    "Dana Fixture <dana@example.org>",
    "Emeka Testcase <emeka@example.org>",     "Farah Mock <farah@example.org>",
    "Example Packaging Team <team@example.org>", "Gustavo Stub <gustavo@example.org>"};

} // namespace

catalog_record generate_record(std::uint64_t index, std::uint64_t seed) {
  // Seed each record independently so record i never depends on records before it.
  splitmix64 rng{seed * 0xd1b54a32d192ed03ULL ^ (index + 1) * 0x9e3779b97f4a7c15ULL};
  rng.next();

  catalog_record r;
  const bool lib = rng.below(3) == 0;
  r.name = fmt::format("{}{}-{}-{}", lib ? "lib" : "", rng.pick(name_words), rng.pick(kinds), index);
  r.version = fmt::format("{}.{}.{}-{}", rng.below(10), rng.below(30), rng.below(100), 1 + rng.below(5));
  r.section = std::string(lib ? std::string_view("libs") : rng.pick(sections));
  r.maintainer = std::string(rng.pick(maintainers));

  // Synopsis, then 1-3 sentences of 6-14 words, like a Debian long description.
  r.description = fmt::format("{} {} {} for {}", rng.pick(vocabulary), rng.pick(vocabulary), rng.pick(vocabulary),
                              rng.pick(vocabulary));
  const unsigned sentences = 1 + rng.below(3);
  for (unsigned s = 0; s < sentences; ++s) {
    r.description += s == 0 ? "\n" : " ";
    const unsigned words = 6 + rng.below(9);
    for (unsigned w = 0; w < words; ++w) {
      if (w)
        r.description += ' ';
      r.description += rng.pick(vocabulary);
    }
    r.description += '.';
  }
  return r;
}

std::vector<catalog_record> generate_catalog(std::size_t count, std::uint64_t seed) {
  std::vector<catalog_record> records;
  records.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    records.push_back(generate_record(i, seed));
  return records;
}

} // namespace catalog
