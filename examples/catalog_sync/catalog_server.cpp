// catalog_server - a local paginated catalogue API, with latency, rate limits and faults.
//
// The program serves the package catalogue three ways (offset/limit with a total in the body,
// page/per_page with X-Total-Count and Link headers, cursors) so that catalog_sync has
// something realistic, and reproducibly unreliable, to talk to. It runs until SIGINT/SIGTERM.
//
//   catalog_server [--port N] [--source apt | --source generate N] [fault knobs...]
//   catalog_server --help
//
// Distributed under the Boost Software License, Version 1.0.
#include "paginated_server.hpp"

#include <catalog/control_reader.hpp>
#include <catalog/generator.hpp>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <charconv>
#include <csignal>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

// "I:KIND[:TIMES]" -> page I gets KIND on its first TIMES requests (0: all).
std::optional<std::pair<std::size_t, catalog_sync::scripted_fault>> parse_fault_page(const std::string& spec) {
  const auto c1 = spec.find(':');
  if (c1 == std::string::npos)
    return std::nullopt;
  const auto c2 = spec.find(':', c1 + 1);
  const auto kind = catalog_sync::parse_fault(spec.substr(c1 + 1, c2 == std::string::npos ? c2 : c2 - c1 - 1));
  const auto number = [](std::string_view text) -> std::optional<std::size_t> {
    std::size_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size())
      return std::nullopt;
    return v;
  };
  const auto page = number(std::string_view(spec).substr(0, c1));
  const auto times = c2 == std::string::npos ? std::optional<std::size_t>(0) : number(std::string_view(spec).substr(c2 + 1));
  if (!kind || !page || !times)
    return std::nullopt;
  return std::pair{*page, catalog_sync::scripted_fault{*kind, *times}};
}

} // namespace

int main(int argc, char** argv) {
  catalog_sync::server_options options;
  std::vector<std::string> source_spec{"generate", "5000"};
  bool edit = false;
  long long latency_ms = 0, jitter_ms = 0, slow_ms = options.slow_delay.count();
  std::vector<std::string> fault_pages;

  CLI::App app{"A local paginated catalogue API (offset, page and cursor styles) with latency, a rate limit and\n"
               "seeded faults. Prints \"port N\" once listening; runs until SIGINT/SIGTERM.",
               "catalog_server"};
  // A repeated option: the last one wins (scripts append overrides), except the repeatable ones.
  app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--host", options.host, "address to bind");
  app.add_option("--port", options.port, "port; 0 picks a free one")->check(CLI::Range(0, 65535));
  app.add_option("--source", source_spec, "'apt' (this machine's package list) or 'generate N'")
      ->expected(1, 2)
      ->default_str("generate 5000");
  app.add_option("--seed", options.seed, "generator and fault seed");
  app.add_flag("--edit", edit, "serve an edited catalogue (some deleted, updated, added)");
  app.add_option("--threads", options.threads, "handler threads (more than the client's concurrency)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1024}));
  app.add_option("--max-page-size", options.max_page_size, "silent cap on limit/per_page")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  app.add_flag("--bare-offset", options.bare_offset_pages,
               "offset pages are a bare JSON array, without the total");
  app.add_flag("--offset-total-header", options.offset_total_header, "offset pages send X-Total-Count");
  app.add_option("--latency-ms", latency_ms, "added to every page")->check(CLI::Range(0LL, 600000LL));
  app.add_option("--jitter-ms", jitter_ms, "plus uniform [0, N] ms")->check(CLI::Range(0LL, 600000LL));
  app.add_option("--rate-limit", options.rate_limit, "token bucket, requests/s; beyond it 429 (0: off)")
      ->check(CLI::Range(0.0, 1e9));
  const char* faults = "Injected faults (probability per request)";
  app.add_option("--fault-429", options.rate_429, "429 + Retry-After")->check(CLI::Range(0.0, 1.0))->group(faults);
  app.add_option("--fault-5xx", options.rate_5xx, "500/502/503")->check(CLI::Range(0.0, 1.0))->group(faults);
  app.add_option("--fault-truncated", options.rate_truncated, "a body cut short (connection closed)")
      ->check(CLI::Range(0.0, 1.0))
      ->group(faults);
  app.add_option("--fault-malformed", options.rate_malformed, "a 200 with invalid JSON")
      ->check(CLI::Range(0.0, 1.0))
      ->group(faults);
  app.add_option("--fault-slow", options.rate_slow, "a response delayed by --slow-ms")
      ->check(CLI::Range(0.0, 1.0))
      ->group(faults);
  app.add_option("--slow-ms", slow_ms, "delay of a slow response")->check(CLI::Range(0LL, 600000LL))->group(faults);
  app.add_option("--retry-after", options.retry_after_seconds, "Retry-After of injected 429s, seconds")
      ->check(CLI::Range(0, 3600))
      ->group(faults);
  app.add_option("--shift-after-first-page", options.shift_after_first_page,
                 "once the first page is out, insert N records at the front (a source changing mid-run)")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1000000}))
      ->group(faults);
  app.add_option("--fault-page", fault_pages,
                 "I:KIND[:TIMES] forces KIND (429, 5xx, truncated, malformed, slow, 400, gzip-bomb, endless) on page I "
                 "(0-based), "
                 "its first TIMES requests (0: all); repeatable")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->group(faults);
  try {
    app.parse(argc, argv);
    for (const auto& spec : fault_pages) {
      auto f = parse_fault_page(spec);
      if (!f)
        throw CLI::ValidationError("--fault-page", "'" + spec + "' is not I:KIND[:TIMES]");
      options.script[f->first] = f->second;
    }
    const bool apt = source_spec.size() == 1 && source_spec[0] == "apt";
    const bool generate = !source_spec.empty() && source_spec[0] == "generate";
    if (!apt && !generate)
      throw CLI::ValidationError("--source", "expected 'apt' or 'generate N'");
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2; // --help is a success; anything else is usage
  }
  std::size_t generate_count = 5000;
  if (source_spec[0] == "generate" && source_spec.size() == 2) {
    const std::string& text = source_spec[1];
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), generate_count);
    if (ec != std::errc() || end != text.data() + text.size() || generate_count > 100'000'000) {
      fmt::print(stderr, "--source: 'generate {}': N must be a count up to 100000000\n", text);
      return 2;
    }
  }
  options.latency = std::chrono::milliseconds(latency_ms);
  options.jitter = std::chrono::milliseconds(jitter_ms);
  options.slow_delay = std::chrono::milliseconds(slow_ms);
  const std::string source = source_spec[0];

  try {
    // 1. The catalogue to serve.
    std::vector<catalog::catalog_record> records;
    if (source == "apt")
      records = catalog::load_apt_catalog();
    else
      records = catalog::generate_catalog(generate_count, options.seed);
    if (edit)
      records = catalog_sync::edit_catalogue(std::move(records)).first;

    // 2. Block the stop signals before any thread starts, so only sigwait below sees them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    // 3. Serve.
    const std::size_t count = records.size();
    catalog_sync::paginated_server server(std::move(records), options);
    fmt::print("catalog_server: listening on {}/ ({} records{}; /offset/packages, /page/packages, "
               "/cursor/packages)\n",
               server.base_url(), count, edit ? ", edited" : "");
    fmt::print("port {}\n", server.port());
    std::fflush(stdout);

    int signo = 0;
    sigwait(&stop_signals, &signo);
    const auto s = server.stats();
    server.stop();
    fmt::print("catalog_server: stopped by signal {}; {} requests ({} ok, {} 429, {} 5xx, {} truncated, "
               "{} malformed, {} slow, {} 400), at most {} in flight\n",
               signo, s.requests, s.ok, s.rate_limited, s.server_errors, s.truncated, s.malformed, s.slow,
               s.bad_requests, s.max_in_flight);
    return EXIT_SUCCESS;
  } catch (const std::exception& e) {
    fmt::print(stderr, "catalog_server: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
