// catalog_sync - pull a whole paginated catalogue API into SQLite, concurrently and politely.
//
// The program demonstrates a blocking HTTP client (libcurl) wrapped once with smart_async and
// driven by smartasync's fan_out, retry and with_timeout on a background loop, while this
// thread stays plain synchronous code: it iterates the run's progress events through a
// smartasync::sync_stream and draws them. Ctrl-C cancels cleanly: nothing is committed.
//
//   catalog_sync --url URL [--db FILE] [--style offset|page|cursor] [--concurrency K] ...
//
// Distributed under the Boost Software License, Version 1.0.
#include "catalog_fetch.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>

namespace {

void usage(const char* argv0) {
  fmt::print(stderr,
             "usage: {} --url URL [options]\n"
             "  --url URL               the collection (e.g. http://127.0.0.1:8080/offset/packages)\n"
             "  --db FILE               the catalogue to sync (default catalog.db; created if missing)\n"
             "  --style S               offset (default), page or cursor\n"
             "  --concurrency K         page requests in flight (default 8)\n"
             "  --page-size N           items per request (default 100)\n"
             "  --connect-timeout-ms N  default 2000\n"
             "  --timeout-ms N          per request, default 10000\n"
             "  --retries N             attempts per page, the first included (default 5)\n"
             "  --retry-base-ms N       first backoff ceiling (default 200; doubles, full jitter)\n"
             "  --retry-max-ms N        backoff cap (default 10000)\n"
             "  --max-retry-after-s N   fail rather than honour a longer Retry-After (default 120)\n"
             "  --header 'Name: value'  extra request header (repeatable)\n"
             "  --no-compression        do not ask for gzip (saves CPU on a fast local link)\n"
             "  --progress MODE         auto (default: bar on a terminal, lines otherwise), bar,\n"
             "                          lines, quiet\n"
             "  --seed S                retry jitter seed (reproducible delays)\n"
             "API naming (for real APIs): --offset-param --limit-param --page-param\n"
             "  --per-page-param --cursor-param --items-key --total-key --next-key --total-header\n",
             argv0);
}

std::string fmt_total(const std::optional<std::size_t>& n) { return n ? std::to_string(*n) : "?"; }

class progress_view {
public:
  enum class mode { bar, lines, quiet };
  explicit progress_view(mode m) : mode_(m) {}

  void operator()(const catalog_sync::sync_started& e) {
    started_ = e;
    if (mode_ == mode::quiet)
      return;
    fmt::print("sync {} ({} pagination, {} in flight): {} items in {} pages\n", e.url, to_string(e.style),
               e.concurrency, fmt_total(e.total_items), fmt_total(e.total_pages));
  }

  void operator()(const catalog_sync::page_done& e) {
    if (mode_ == mode::bar) {
      constexpr int width = 30;
      std::string bar;
      if (e.total_pages && *e.total_pages > 0) {
        const auto filled = static_cast<int>(width * e.pages_done / *e.total_pages);
        bar = fmt::format("[{}{}] {:3}%", std::string(static_cast<std::size_t>(filled), '#'),
                          std::string(static_cast<std::size_t>(width - filled), '.'),
                          100 * e.pages_done / *e.total_pages);
      } else {
        bar = fmt::format("[{:^{}}]", "following next links", width);
      }
      fmt::print("\r{} {}/{} pages, {}/{} items", bar, e.pages_done, fmt_total(e.total_pages), e.items_done,
                 fmt_total(e.total_items));
      std::fflush(stdout);
      bar_shown_ = true;
    } else if (mode_ == mode::lines) {
      const std::size_t step = e.total_pages ? std::max<std::size_t>(1, *e.total_pages / 10) : 10;
      if (e.pages_done % step == 0 || (e.total_pages && e.pages_done == *e.total_pages))
        fmt::print("page {} done ({} items{}): {}/{} pages, {}/{} items\n", e.page + 1, e.items,
                   e.attempts > 1 ? fmt::format(", {} attempts", e.attempts) : "", e.pages_done,
                   fmt_total(e.total_pages), e.items_done, fmt_total(e.total_items));
    }
  }

  void operator()(const catalog_sync::page_retry& e) {
    if (mode_ == mode::quiet)
      return;
    end_bar();
    fmt::print("retry page {} after attempt {} in {} ms: {}\n", e.page + 1, e.attempt, e.delay.count(), e.reason);
  }

  void operator()(const catalog_sync::sync_completed& e) {
    end_bar();
    fmt::print("synced {} items in {} pages in {:.2f} s ({:.0f} items/s, {} retries): {} added, {} updated, "
               "{} deleted, {} unchanged\n",
               e.items, e.pages, static_cast<double>(e.elapsed.count()) / 1000.0, e.items_per_second, e.retries,
               e.counts.added, e.counts.updated, e.counts.deleted, e.counts.unchanged);
  }

  void operator()(const catalog_sync::sync_failed& e) {
    end_bar();
    fmt::print(stderr, "catalog_sync: {}: {}\n", e.cancelled ? "interrupted" : "failed", e.message);
  }

private:
  void end_bar() {
    if (bar_shown_)
      fmt::print("\n");
    bar_shown_ = false;
  }
  mode mode_;
  bool bar_shown_ = false;
  std::optional<catalog_sync::sync_started> started_;
};

} // namespace

int main(int argc, char** argv) {
  // Line-buffered even into a pipe or a file, so progress lines appear as they happen.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  catalog_sync::sync_options options;
  std::string db = "catalog.db";
  std::string progress = "auto";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage(argv[0]);
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&] { return static_cast<std::size_t>(std::strtoull(value().c_str(), nullptr, 10)); };
    auto millis = [&] { return std::chrono::milliseconds(number()); };
    if (arg == "--url") options.url = value();
    else if (arg == "--db") db = value();
    else if (arg == "--style") {
      auto s = catalog_sync::parse_pagination_style(value());
      if (!s) {
        usage(argv[0]);
        return 2;
      }
      options.style = *s;
    } else if (arg == "--concurrency") options.concurrency = number();
    else if (arg == "--page-size") options.page_size = number();
    else if (arg == "--connect-timeout-ms") options.connect_timeout = millis();
    else if (arg == "--timeout-ms") options.request_timeout = millis();
    else if (arg == "--retries") options.max_attempts = number();
    else if (arg == "--retry-base-ms") options.retry_base_delay = millis();
    else if (arg == "--retry-max-ms") options.retry_max_delay = millis();
    else if (arg == "--max-retry-after-s") options.max_retry_after = std::chrono::seconds(number());
    else if (arg == "--header") options.headers.push_back(value());
    else if (arg == "--no-compression") options.compression = false;
    else if (arg == "--progress") progress = value();
    else if (arg == "--seed") options.seed = number();
    else if (arg == "--offset-param") options.names.offset_param = value();
    else if (arg == "--limit-param") options.names.limit_param = value();
    else if (arg == "--page-param") options.names.page_param = value();
    else if (arg == "--per-page-param") options.names.per_page_param = value();
    else if (arg == "--cursor-param") options.names.cursor_param = value();
    else if (arg == "--items-key") options.names.items_key = value();
    else if (arg == "--total-key") options.names.total_key = value();
    else if (arg == "--next-key") options.names.next_key = value();
    else if (arg == "--total-header") options.names.total_header = value();
    else {
      usage(argv[0]);
      return 2;
    }
  }
  if (options.url.empty() || options.concurrency == 0 || options.page_size == 0 || options.max_attempts == 0) {
    usage(argv[0]);
    return 2;
  }
  progress_view::mode mode = isatty(STDOUT_FILENO) ? progress_view::mode::bar : progress_view::mode::lines;
  if (progress == "bar") mode = progress_view::mode::bar;
  else if (progress == "lines") mode = progress_view::mode::lines;
  else if (progress == "quiet") mode = progress_view::mode::quiet;
  else if (progress != "auto") {
    usage(argv[0]);
    return 2;
  }

  try {
    // 1. The pools (K HTTP workers, one database worker) and the wrapped blocking calls.
    catalog_sync::catalog_syncer syncer(options);
    // 2. The run starts on smartasync's background loop; SIGINT/SIGTERM cancel it.
    auto events = catalog_sync::sync_events(syncer, db, /*cancel_on_signals=*/true);
    // 3. This thread consumes the events synchronously, like any loop over a container.
    progress_view view(mode);
    int status = EXIT_FAILURE;
    for (const catalog_sync::sync_event& e : *events) {
      std::visit(view, e);
      if (std::holds_alternative<catalog_sync::sync_completed>(e))
        status = EXIT_SUCCESS;
      else if (const auto* f = std::get_if<catalog_sync::sync_failed>(&e))
        status = f->cancelled ? 130 : EXIT_FAILURE;
    }
    return status;
  } catch (const std::exception& e) {
    fmt::print(stderr, "catalog_sync: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
