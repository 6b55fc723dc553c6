// catalog_sync - pull a whole paginated catalogue API into SQLite, concurrently and politely.
//
// The program demonstrates a blocking HTTP client (libcurl) wrapped once with smart_async and
// driven by smartasync's fan_out, retry and with_timeout on a background loop, while this
// thread stays plain synchronous code: it iterates the run's progress events through a
// smartasync::sync_stream and draws them. Ctrl-C cancels cleanly: nothing is committed.
//
//   catalog_sync --url URL [--db FILE] [--style offset|page|cursor] [--concurrency K] ...
//   catalog_sync --help
//
// Distributed under the Boost Software License, Version 1.0.
#include "catalog_fetch.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>

namespace {

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
    if (e.page_size != e.requested_page_size)
      fmt::print("the first page had {} items for a page size of {}{}: continuing with pages of {}\n", e.page_size,
                 e.requested_page_size,
                 e.page_size_capped ? " while the API announces more (it caps the page size silently)"
                                    : " and no total (a capped page size, or the end)",
                 e.page_size);
    if (e.until_empty_page)
      fmt::print("the API does not say how many items it has: {} pages in flight past the unknown end, "
                 "until one comes back empty (that proves the end)\n",
                 e.concurrency);
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
    if (e.duplicates > 0)
      fmt::print("warning: {} item{} named a record served earlier in the run (the last one was kept, {} distinct "
                 "records): {}{}\n",
                 e.duplicates, e.duplicates == 1 ? "" : "s", e.items - e.duplicates,
                 fmt::join(e.duplicate_names, ", "), e.duplicates > e.duplicate_names.size() ? ", ..." : "");
  }

  void operator()(const catalog_sync::sync_failed& e) {
    end_bar();
    fmt::print(stderr, "catalog_sync: {}: {}\n", e.cancelled ? "interrupted" : e.refused ? "refused" : "failed",
               e.message);
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
  std::string style = "offset";
  std::string progress = "auto";
  long long connect_timeout_ms = options.connect_timeout.count(), timeout_ms = options.request_timeout.count();
  long long retry_base_ms = options.retry_base_delay.count(), retry_max_ms = options.retry_max_delay.count();
  long long max_retry_after_s = 120;
  std::uint64_t seed = 0;

  CLI::App app{"Pulls a whole paginated catalogue API into an SQLite catalogue, concurrently and politely.\n"
               "Exit status: 0 synced, 1 failed (the message names the page and the reason), 2 bad command\n"
               "line, 3 refused by the deletion guard, 130 interrupted. Nothing is committed unless 0.",
               "catalog_sync"};
  // A repeated option: the last one wins (scripts append overrides), except the repeatable ones.
  app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--url", options.url, "the collection (e.g. http://127.0.0.1:8080/offset/packages)")->required();
  app.add_option("--db", db, "the catalogue to sync (created if missing)");
  app.add_option("--style", style, "pagination convention")->check(CLI::IsMember({"offset", "page", "cursor"}));
  app.add_option("--concurrency", options.concurrency, "page requests in flight (HTTP threads)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{256}));
  app.add_option("--page-size", options.page_size, "items per request (a silent cap is detected)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}));
  app.add_option("--connect-timeout-ms", connect_timeout_ms)->check(CLI::Range(1LL, 600000LL));
  app.add_option("--timeout-ms", timeout_ms, "per request, connection included")->check(CLI::Range(1LL, 3600000LL));
  app.add_option("--retries", options.max_attempts, "attempts per page, the first included")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100}));
  app.add_option("--retry-base-ms", retry_base_ms, "first backoff ceiling (doubles, full jitter)")
      ->check(CLI::Range(0LL, 600000LL));
  app.add_option("--retry-max-ms", retry_max_ms, "backoff cap")->check(CLI::Range(0LL, 3600000LL));
  app.add_option("--max-retry-after-s", max_retry_after_s, "fail rather than honour a longer Retry-After")
      ->check(CLI::Range(0LL, 86400LL));
  app.add_option("--header", options.headers, "extra request header 'Name: value' (repeatable)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_flag("!--no-compression", options.compression, "do not ask for gzip (saves CPU on a fast local link)");
  app.add_option("--max-body-bytes", options.max_body_bytes,
                 "largest page body accepted, counted decompressed (a larger one fails the run)")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 30));
  app.add_option("--progress", progress, "auto: a bar on a terminal, lines otherwise")
      ->check(CLI::IsMember({"auto", "bar", "lines", "quiet"}));
  auto* seed_option =
      app.add_option("--seed", seed, "retry jitter seed (reproducible delays)")->default_str("random");
  app.add_option("--max-delete-share", options.max_delete_share,
                 "deletion guard: refuse a commit deleting more than this share of the catalogue (or all of it)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--allow-mass-delete", options.allow_mass_delete,
               "turn the deletion guard off: the API really removed that much");
  auto& n = options.names;
  const char* naming = "API naming";
  app.add_option("--offset-param", n.offset_param)->group(naming);
  app.add_option("--limit-param", n.limit_param)->group(naming);
  app.add_option("--page-param", n.page_param)->group(naming);
  app.add_option("--per-page-param", n.per_page_param)->group(naming);
  app.add_option("--cursor-param", n.cursor_param)->group(naming);
  app.add_option("--items-key", n.items_key, "where the records are in an object body")->group(naming);
  app.add_option("--total-key", n.total_key, "the total in an object body")->group(naming);
  app.add_option("--next-key", n.next_key, "the next cursor")->group(naming);
  app.add_option("--total-header", n.total_header, "the total in a header (any style)")->group(naming);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? EXIT_SUCCESS : 2; // --help is a success; anything else is usage
  }
  options.style = *catalog_sync::parse_pagination_style(style);
  options.connect_timeout = std::chrono::milliseconds(connect_timeout_ms);
  options.request_timeout = std::chrono::milliseconds(timeout_ms);
  options.retry_base_delay = std::chrono::milliseconds(retry_base_ms);
  options.retry_max_delay = std::chrono::milliseconds(retry_max_ms);
  options.max_retry_after = std::chrono::seconds(max_retry_after_s);
  if (*seed_option)
    options.seed = seed;
  progress_view::mode mode = isatty(STDOUT_FILENO) ? progress_view::mode::bar : progress_view::mode::lines;
  if (progress == "bar")
    mode = progress_view::mode::bar;
  else if (progress == "lines")
    mode = progress_view::mode::lines;
  else if (progress == "quiet")
    mode = progress_view::mode::quiet;

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
        status = f->cancelled ? 130 : f->refused ? 3 : EXIT_FAILURE;
    }
    return status;
  } catch (const std::exception& e) {
    fmt::print(stderr, "catalog_sync: {}\n", e.what());
    return EXIT_FAILURE;
  }
}
