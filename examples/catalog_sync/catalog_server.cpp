// catalog_server - a local paginated catalogue API, with latency, rate limits and faults.
//
// The program serves the package catalogue three ways (offset/limit with a total in the body,
// page/per_page with X-Total-Count and Link headers, cursors) so that catalog_sync has
// something realistic, and reproducibly unreliable, to talk to. It runs until SIGINT/SIGTERM.
//
//   catalog_server [--port N] [--source apt | --source generate N] [fault knobs...]
//
// Distributed under the Boost Software License, Version 1.0.
#include "paginated_server.hpp"

#include <catalog/control_reader.hpp>
#include <catalog/generator.hpp>

#include <fmt/format.h>

#include <csignal>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void usage(const char* argv0) {
  fmt::print(stderr,
             "usage: {} [options]\n"
             "  --host H              address to bind (default 127.0.0.1)\n"
             "  --port N              port; 0 (default) picks a free one and prints it\n"
             "  --source apt          serve this machine's apt package list\n"
             "  --source generate N   serve N generated records (default: generate 5000)\n"
             "  --seed S              generator and fault seed (default 1)\n"
             "  --edit                serve an edited catalogue (some deleted, updated, added)\n"
             "  --threads N           handler threads (default 96; > client concurrency)\n"
             "  --max-page-size N     cap on limit/per_page (default 1000)\n"
             "  --latency-ms N        added to every page (default 0)\n"
             "  --jitter-ms N         plus uniform [0, N] ms (default 0)\n"
             "  --rate-limit RPS      token bucket; beyond it 429 + Retry-After (default off)\n"
             "  --fault-429 P         probability of an injected 429 per request\n"
             "  --fault-5xx P         ... of a 500/502/503\n"
             "  --fault-truncated P   ... of a body cut short (connection closed)\n"
             "  --fault-malformed P   ... of a 200 with invalid JSON\n"
             "  --fault-slow P        ... of a response delayed by --slow-ms\n"
             "  --slow-ms N           delay of a slow response (default 3000)\n"
             "  --retry-after S       Retry-After of injected 429s, seconds (default 1)\n"
             "  --fault-page I:KIND[:TIMES]  force KIND (429, 5xx, truncated, malformed, slow,\n"
             "                        400) on page I (0-based), its first TIMES requests (0: all)\n",
             argv0);
}

double to_double(const char* s) { return std::strtod(s, nullptr); }
long to_long(const char* s) { return std::strtol(s, nullptr, 10); }

} // namespace

int main(int argc, char** argv) {
  catalog_sync::server_options options;
  std::string source = "generate";
  std::size_t generate_count = 5000;
  bool edit = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        usage(argv[0]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--host") options.host = value();
    else if (arg == "--port") options.port = static_cast<int>(to_long(value()));
    else if (arg == "--source") {
      source = value();
      if (source == "generate" && i + 1 < argc && argv[i + 1][0] != '-')
        generate_count = static_cast<std::size_t>(to_long(value()));
    } else if (arg == "--seed") options.seed = static_cast<std::uint64_t>(to_long(value()));
    else if (arg == "--edit") edit = true;
    else if (arg == "--threads") options.threads = static_cast<std::size_t>(to_long(value()));
    else if (arg == "--max-page-size") options.max_page_size = static_cast<std::size_t>(to_long(value()));
    else if (arg == "--latency-ms") options.latency = std::chrono::milliseconds(to_long(value()));
    else if (arg == "--jitter-ms") options.jitter = std::chrono::milliseconds(to_long(value()));
    else if (arg == "--rate-limit") options.rate_limit = to_double(value());
    else if (arg == "--fault-429") options.rate_429 = to_double(value());
    else if (arg == "--fault-5xx") options.rate_5xx = to_double(value());
    else if (arg == "--fault-truncated") options.rate_truncated = to_double(value());
    else if (arg == "--fault-malformed") options.rate_malformed = to_double(value());
    else if (arg == "--fault-slow") options.rate_slow = to_double(value());
    else if (arg == "--slow-ms") options.slow_delay = std::chrono::milliseconds(to_long(value()));
    else if (arg == "--retry-after") options.retry_after_seconds = static_cast<int>(to_long(value()));
    else if (arg == "--fault-page") {
      // I:KIND[:TIMES]
      const std::string spec = value();
      const auto c1 = spec.find(':');
      const auto c2 = spec.find(':', c1 == std::string::npos ? c1 : c1 + 1);
      auto kind = c1 == std::string::npos ? std::nullopt
                                          : catalog_sync::parse_fault(spec.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1));
      if (!kind) {
        fmt::print(stderr, "catalog_server: bad --fault-page '{}'\n", spec);
        return 2;
      }
      options.script[static_cast<std::size_t>(to_long(spec.c_str()))] = {
          *kind, c2 == std::string::npos ? 0 : static_cast<std::size_t>(to_long(spec.c_str() + c2 + 1))};
    } else {
      usage(argv[0]);
      return 2;
    }
  }

  try {
    // 1. The catalogue to serve.
    std::vector<catalog::catalog_record> records;
    if (source == "apt")
      records = catalog::load_apt_catalog();
    else if (source == "generate")
      records = catalog::generate_catalog(generate_count, options.seed);
    else {
      usage(argv[0]);
      return 2;
    }
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
