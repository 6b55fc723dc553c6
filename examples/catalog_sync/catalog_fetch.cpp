// catalog_sync/catalog_fetch.cpp - the sync: fan-out, retries, timeouts, staging, events.
// Distributed under the Boost Software License, Version 1.0.
#include "catalog_fetch.hpp"

#include "http_client.hpp"
#include "http_headers.hpp"
#include "page_decoder.hpp"
#include "thread_priority.hpp"

#include <catalog/catalog_db.hpp>
#include <catalog/json.hpp>
#include <example/as_tuple.hpp>
#include <smartasync/error.hpp>
#include <smartasync/fan_out.hpp>
#include <smartasync/retry.hpp>
#include <smartasync/semaphore.hpp>
#include <smartasync/serial_lane.hpp>
#include <smartasync/deferred.hpp>
#include <smartasync/smart_async.hpp>
#include <smartasync/timeout.hpp>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <curl/curl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <csignal>
#include <deque>
#include <random>
#include <string_view>
#include <system_error>
#include <utility>

namespace catalog_sync {

namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Pages: requests, results, failures.

struct page_request {
  std::size_t index = 0; // 0-based
  std::string url;
};

std::string percent_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::string with_params(const std::string& url,
                        std::initializer_list<std::pair<std::string_view, std::string>> params) {
  std::string out = url;
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  for (const auto& [k, v] : params) {
    out += sep;
    out += percent_encode(k);
    out += '=';
    out += percent_encode(v);
    sep = '&';
  }
  return out;
}

/// The blocking part of one attempt, run on an HTTP pool worker: GET, status, parse.
page_result fetch_page_blocking(std::stop_token stop, const sync_options& o,
                                const page_request& request) {
  http_response response;
  try {
    response = http_get(std::move(stop), request.url,
                        {{o.connect_timeout, o.request_timeout}, o.headers, o.compression, o.max_body_bytes});
  } catch (const response_too_large& e) {
    // The same request would grow past the cap again: not retried.
    throw fetch_failure(e.what(), false);
  }

  if (response.status == 429 || response.status == 408 || response.status >= 500) {
    std::optional<std::chrono::milliseconds> retry_after;
    std::string reason = fmt::format("HTTP {}", response.status);
    if (auto h = response.header("retry-after")) {
      retry_after = parse_retry_after(*h);
      reason += fmt::format(" (Retry-After: {})", *h);
    }
    throw fetch_failure(std::move(reason), true, retry_after);
  }
  if (response.status < 200 || response.status >= 300) {
    std::string detail = response.body.substr(0, 200);
    throw fetch_failure(fmt::format("HTTP {}{}{}", response.status, detail.empty() ? "" : ": ", detail),
                        false);
  }

  return decode_page({response.body, response.header(o.names.total_header), response.header("link")},
                     o.style, o.names);
}

std::string describe(std::exception_ptr e, const sync_options& o) {
  try {
    std::rethrow_exception(e);
  } catch (const fetch_failure& f) {
    return f.what();
  } catch (const transport_error& t) {
    return t.timed_out() ? fmt::format("timed out: {}", t.what()) : fmt::format("connection error: {}", t.what());
  } catch (const std::system_error& s) {
    if (s.code() == smartasync::error::timeout)
      return fmt::format("no response within {} ms", o.request_timeout.count());
    if (s.code() == smartasync::error::deadline_expired)
      return fmt::format("not started within {} ms: every fetch thread was busy", o.request_timeout.count());
    return s.what();
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown error";
  }
}

bool is_abort(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& s) {
    return s.code() == asio::error::operation_aborted ||
           s.code() == std::make_error_code(std::errc::operation_canceled);
  } catch (...) {
  }
  return false;
}

// A database operation that cancellation must not interrupt: it runs to its end on the
// database worker, so the catalog_sync is never used by two threads at once.
auto shielded() { return asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable); }

asio::awaitable<void> throw_if_cancelled_now() {
  asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
  if (state.cancelled() != asio::cancellation_type::none)
    throw std::system_error(asio::error::operation_aborted, "sync cancelled");
}

// The catalogue connection and its open sync; touched only on the database worker.
struct db_session {
  std::optional<catalog::catalog_db> db;
  std::optional<catalog::catalog_sync> sync;
};

struct commit_result {
  catalog::sync_counts counts;
  std::size_t duplicates = 0;
  std::vector<std::string> duplicate_names;
};
using session_ptr = std::shared_ptr<db_session>;

} // namespace

// -----------------------------------------------------------------------------------------------

struct catalog_syncer::impl {
  std::shared_ptr<const sync_options> options;
  // One thread per page request in flight, plus one for the database. The database work is
  // on a lane rather than a pool of its own: the catalogue's connection must see one call at a
  // time, in the order issued (pages staged, then commit or rollback), and a lane says so
  // itself, where a one-thread pool said it only through its thread count.
  smartasync::blocking_pool pool;
  smartasync::serial_lane database;
  std::minstd_rand engine;

  // The page request, wrapped once.
  smartasync::smart_async_function<std::function<page_result(std::stop_token, page_request)>> fetch;

  explicit impl(sync_options o)
      : options(std::make_shared<const sync_options>(std::move(o))),
        pool(smartasync::pool_options{
            .threads = std::max<std::size_t>(1, options->concurrency) + 1,
            .queue_capacity = 4 * std::max<std::size_t>(1, options->concurrency),
            .on_thread_start = [nice = options->thread_nice] { set_this_thread_nice(nice); }}),
        database(pool, {.queue_capacity = 64, .when_full = smartasync::full_policy::wait}),
        engine(static_cast<std::minstd_rand::result_type>(options->seed.value_or(std::random_device{}()))),
        fetch(smartasync::smart_async(
            pool,
            std::function<page_result(std::stop_token, page_request)>(
                [opts = options](std::stop_token stop, page_request r) {
                  return fetch_page_blocking(std::move(stop), *opts, r);
                }),
            {.name = "catalog page GET"})) {
    if (options->concurrency == 0)
      throw std::invalid_argument("catalog_syncer: concurrency must be at least 1");
    if (options->page_size == 0)
      throw std::invalid_argument("catalog_syncer: page_size must be at least 1");
    if (options->max_body_bytes == 0)
      throw std::invalid_argument("catalog_syncer: max_body_bytes must be at least 1");
    if (!(options->max_delete_share >= 0 && options->max_delete_share <= 1))
      throw std::invalid_argument("catalog_syncer: max_delete_share must be within [0, 1]");
  }

  // Per-run counters and the event sink. Used only on the run's executor.
  struct run_state {
    event_sink sink;
    std::size_t pages_done = 0;
    std::size_t items_done = 0;
    std::size_t retries = 0;
    std::optional<std::size_t> total_items;
    std::optional<std::size_t> total_pages;
    // The last page number the first page's Link header announced (page style).
    std::optional<std::size_t> first_last_page;
    void emit(sync_event e) const {
      if (sink)
        sink(e);
    }
  };

  page_request request_for(std::size_t index, std::size_t page_size) const {
    const sync_options& o = *options;
    switch (o.style) {
    case pagination_style::offset:
      return {index, with_params(o.url, {{o.names.offset_param, std::to_string(index * page_size)},
                                         {o.names.limit_param, std::to_string(page_size)}})};
    case pagination_style::page:
      return {index, with_params(o.url, {{o.names.page_param, std::to_string(index + 1)},
                                         {o.names.per_page_param, std::to_string(page_size)}})};
    case pagination_style::cursor:
      break;
    }
    return {index, with_params(o.url, {{o.names.limit_param, std::to_string(page_size)}})};
  }

  /// One page, with a deadline per attempt and retries with backoff and full jitter.
  asio::awaitable<page_result> fetch_page(page_request request, run_state& st, std::size_t& attempts) {
    const sync_options& o = *options;
    smartasync::retry_policy policy{
        .max_attempts = o.max_attempts,
        .base_delay = o.retry_base_delay,
        .max_delay = o.retry_max_delay,
        .factor = 2.0,
        .retryable = {},
        .server_delay = {},
        // A Retry-After up to --max-retry-after-s is honoured (a longer one fails the page,
        // below), whatever the computed backoff's ceiling.
        .max_server_delay = o.max_retry_after,
        .on_retry = {},
    };
    policy.retryable = [&o](std::exception_ptr e) {
      try {
        std::rethrow_exception(e);
      } catch (const fetch_failure& f) {
        return f.retryable() && f.retry_after().value_or(0ms) <= o.max_retry_after;
      } catch (const transport_error& t) {
        return t.curl_code() != CURLE_UNSUPPORTED_PROTOCOL && t.curl_code() != CURLE_URL_MALFORMAT;
      } catch (const std::system_error& s) {
        // Timed out while running, or never started before the deadline (the call did
        // nothing then, so another attempt is as safe as the first).
        return s.code() == smartasync::error::timeout || s.code() == smartasync::error::deadline_expired;
      } catch (...) {
      }
      return false;
    };
    policy.server_delay = [](std::exception_ptr e) -> std::optional<smartasync::retry_policy::duration> {
      try {
        std::rethrow_exception(e);
      } catch (const fetch_failure& f) {
        if (auto d = f.retry_after())
          return *d;
      } catch (...) {
      }
      return std::nullopt;
    };
    policy.on_retry = [&, index = request.index](std::size_t attempt, smartasync::retry_policy::duration delay,
                                                 std::exception_ptr e) {
      ++st.retries;
      st.emit(page_retry{index, attempt, std::chrono::duration_cast<std::chrono::milliseconds>(delay),
                         describe(e, o)});
    };

    // curl enforces the connect and total timeouts itself; with_timeout is the outer bound
    // of an attempt (a queued call, a transfer that ignores its timeout).
    const auto deadline = o.request_timeout + 1000ms;
    attempts = 0;
    try {
      co_return co_await smartasync::retry(
          std::move(policy),
          [&] {
            ++attempts;
            return smartasync::with_timeout(fetch.async_call(request, smartasync::deferred), deadline);
          },
          engine);
    } catch (...) {
      auto e = std::current_exception();
      if (is_abort(e))
        throw;
      throw sync_error(fmt::format("page {} failed after {} attempt{}: {} (GET {})", request.index + 1,
                                   attempts, attempts == 1 ? "" : "s", describe(e, o), request.url));
    }
  }

  // Offsets and page numbers address positions: a record added or removed before them during
  // the run shifts every later page, so that records are served twice or skipped. A total that
  // moves between pages is the API saying so; a run that saw one cannot prove its snapshot.
  void check_same_total(const run_state& st, std::size_t index, const page_result& page) const {
    if (st.total_items && page.total && *page.total != *st.total_items)
      throw sync_error(fmt::format("page {} announced {} items where the first page announced {}: the collection "
                                   "changed during the sync, so its pages no longer line up (records would be "
                                   "skipped or served twice)",
                                   index + 1, *page.total, *st.total_items));
    if (st.first_last_page && page.last_page && *page.last_page != *st.first_last_page)
      throw sync_error(fmt::format("page {} announced {} pages where the first page announced {}: the collection "
                                   "changed during the sync, so its pages no longer line up (records would be "
                                   "skipped or served twice)",
                                   index + 1, *page.last_page, *st.first_last_page));
  }

  // The database calls, on the lane; shielded: once issued, they finish (a cancelled run
  // still rolls back on the connection, after the write in progress).
  // Each lambda is named before the co_await: gcc 12 destroys a capturing lambda written
  // inside a co_await expression twice (docs/integration.md, "Compilers").
  asio::awaitable<session_ptr> open(std::filesystem::path file) {
    auto open_session = [file] {
      auto s = std::make_shared<db_session>();
      s->db.emplace(file, catalog::open_mode::read_write);
      s->sync.emplace(s->db->begin_sync());
      return s;
    };
    co_return co_await smartasync::async_offload(database, std::move(open_session), shielded());
  }
  // With offsets or page numbers, a name served twice means the pages shifted under the run
  // (records added before a page already fetched), and as many others were skipped: the run
  // fails. Cursors do not shift; a name served twice there is reported (the last one is kept).
  asio::awaitable<void> stage(session_ptr session, std::vector<catalog::catalog_record> records,
                              std::size_t index) {
    auto add_page = [session, records = std::move(records), index, positional = options->style != pagination_style::cursor] {
      const std::size_t before = session->sync->duplicates();
      session->sync->add(records);
      if (const std::size_t repeated = session->sync->duplicates() - before; positional && repeated > 0) {
        const auto names = session->sync->duplicate_names();
        throw sync_error(fmt::format(
            "page {} repeats {} record{} served earlier in the run ({}{}): positions shifted during the sync "
            "(records were added before this page, and as many others would be skipped), or the API serves a "
            "name twice",
            index + 1, repeated, repeated == 1 ? "" : "s", fmt::join(names, ", "),
            repeated > names.size() ? ", ..." : ""));
      }
    };
    co_await smartasync::async_offload(database, std::move(add_page), shielded());
  }
  // The commit is the one database call a cancellation reaches: its stop request interrupts
  // SQLite (catalog_sync::commit), which rolls back, so a stop never waits for a long commit.
  // The lane still sees one call at a time: a cancelled call is waited for until it returns.
  // A commit that completed just as the run was cancelled did commit: its result is kept in
  // `done`, since the cancelled await discards it, and reported as such.
  asio::awaitable<commit_result> commit(session_ptr session) {
    auto done = std::make_shared<std::optional<commit_result>>();
    auto apply = [session, opts = options, done](std::stop_token stop) {
      commit_result r{{}, session->sync->duplicates(), session->sync->duplicate_names()};
      std::optional<catalog::deletion_limit> limit;
      if (!opts->allow_mass_delete)
        limit = catalog::deletion_limit{opts->max_delete_share};
      r.counts = session->sync->commit(limit, std::move(stop));
      *done = std::move(r);
    };
    std::exception_ptr failure;
    try {
      co_await smartasync::async_offload(database, std::move(apply), asio::use_awaitable);
    } catch (...) {
      failure = std::current_exception();
    }
    if (failure && !*done)
      std::rethrow_exception(failure);
    co_return std::move(**done);
  }
  asio::awaitable<void> close(session_ptr session) {
    auto end_session = [session] {
      session->sync.reset(); // rolls back unless committed
      session->db.reset();
    };
    co_await smartasync::async_offload(database, std::move(end_session), shielded());
  }

  // One page written in the background; the permit is returned when it is done.
  asio::awaitable<void> write_page(session_ptr session, std::vector<catalog::catalog_record> records,
                                   std::size_t index, std::size_t attempts, run_state& st,
                                   std::exception_ptr& write_error, smartasync::semaphore_permit permit) {
    const std::size_t n = records.size();
    try {
      co_await stage(std::move(session), std::move(records), index);
      page_staged(st, index, n, attempts);
    } catch (...) {
      if (!write_error)
        write_error = std::current_exception();
    }
    permit.release();
  }

  // A plain function (see the gcc 12 note in run_to_pump): starts write_page, detached; the
  // caller waits for it through the semaphore.
  void start_write(const asio::any_io_executor& ex, const session_ptr& session,
                   std::vector<catalog::catalog_record> records, std::size_t index, std::size_t attempts,
                   run_state& st, std::exception_ptr& write_error, smartasync::semaphore_permit permit) {
    asio::co_spawn(ex, write_page(session, std::move(records), index, attempts, st, write_error, std::move(permit)),
                   asio::detached);
  }

  void page_staged(run_state& st, std::size_t index, std::size_t items, std::size_t attempts) {
    ++st.pages_done;
    st.items_done += items;
    st.emit(page_done{index, items, attempts, st.pages_done, st.items_done, st.total_pages, st.total_items});
  }

  /// Fetches and stages every page; returns after the last one is staged.
  asio::awaitable<void> fetch_all(const session_ptr& session, run_state& st) {
    const sync_options& o = *options;
    std::size_t attempts = 0;

    // 1. The first page alone: it tells how many there are, and whether the page size holds.
    page_result first = co_await fetch_page(request_for(0, o.page_size), st, attempts);
    const std::size_t first_items = first.records.size();
    // What a page looks like, to tell a repeated page (see check_not_repeated below).
    const auto ends_of = [](const std::vector<catalog::catalog_record>& r) {
      return r.empty() ? std::string() : r.front().name + '\n' + r.back().name;
    };
    const std::string first_ends = ends_of(first.records);
    const bool total_known = first.total || (o.style == pagination_style::page && first.last_page);
    const bool follow_links =
        o.style == pagination_style::cursor || (o.style == pagination_style::page && !total_known && first.next_url);
    // Offset or page style with nothing announced: only an empty page proves the end.
    const bool until_empty = !total_known && !follow_links;
    const bool more_announced = (first.total && *first.total > first_items) ||
                                (first.last_page && *first.last_page > 1) || first.next_url ||
                                (first.next_cursor && !first.next_cursor->empty());
    // A short first page is the end or a silent cap on the page size. When more is announced
    // it is the cap; when nothing is, assume the cap too: if it was the end, the next page is
    // empty, which is the proof needed anyway. Either way the pages that follow must line up
    // with what the server really serves.
    std::size_t page_size = o.page_size;
    if (first_items > 0 && first_items < page_size && (more_announced || until_empty))
      page_size = first_items;
    std::optional<std::size_t> pages;
    if (o.style == pagination_style::page && first.last_page)
      pages = *first.last_page;
    else if (first.total && o.style != pagination_style::cursor)
      pages = std::max<std::size_t>(1, (*first.total + page_size - 1) / page_size);
    st.total_items = first.total;
    st.total_pages = pages;
    st.first_last_page = first.last_page;
    st.emit(sync_started{o.url, o.style, o.concurrency, st.total_items, st.total_pages, o.page_size, page_size,
                         page_size != o.page_size && more_announced, until_empty});

    if (follow_links) {
      co_await follow_next_links(session, st, std::move(first), attempts, page_size);
      co_return;
    }

    // 2. Offset or page style: the remaining pages, K at a time, in any order, by index.
    co_await stage(session, std::move(first.records), 0);
    page_staged(st, 0, first_items, attempts);
    co_await throw_if_cancelled_now();
    if (until_empty && first_items == 0)
      co_return; // an empty first page is the end (the deletion guard judges an empty snapshot)

    // With a known page count, indexes 1..pages-1; without, K workers take the next index
    // until one is empty, so K requests stay in flight past the unknown end.
    std::size_t next_index = 1;
    std::optional<std::size_t> end = pages; // the first index past the last page
    std::vector<std::size_t> sizes{first_items}; // items per page index, for the checks below
    constexpr std::size_t not_fetched = static_cast<std::size_t>(-1);
    // The first and last names of each page: a page alike to a neighbour or to the first page
    // means the API ignores the offset or page parameter (a misspelt --offset-param), which
    // would otherwise never reach an empty page. (The first page too: pages arrive out of
    // order, and a later page alike to it must be named so before staging reports it as
    // repeated records.)
    std::vector<std::string> page_ends{first_ends};
    const auto check_not_repeated = [&](std::size_t index) {
      for (std::size_t other : {std::size_t{0}, index - 1, index + 1}) {
        if (other == index || (index == 0 && other == index - 1))
          continue;
        if (other < page_ends.size() && !page_ends[other].empty() && page_ends[other] == page_ends[index])
          throw sync_error(fmt::format(
              "pages {} and {} both start with \"{}\" and end alike: the API ignores the {} parameter (is it "
              "spelt {}?)",
              std::min(index, other) + 1, std::max(index, other) + 1,
              page_ends[index].substr(0, page_ends[index].find('\n')),
              o.style == pagination_style::page ? "page" : "offset",
              o.style == pagination_style::page ? "--page-param " + o.names.page_param
                                                : "--offset-param " + o.names.offset_param));
      }
    };

    // A fetched page is handed to the database worker and its slot freed at once: waiting
    // for the write would queue each slot behind up to K-1 other pages' writes (the database
    // has one thread). The semaphore bounds the pages fetched but not yet written to K, so
    // memory still holds at most 2K pages.
    auto ex = co_await asio::this_coro::executor;
    smartasync::async_semaphore unwritten(ex, o.concurrency);
    std::exception_ptr write_error;
    std::exception_ptr fetch_error;
    std::vector<std::size_t> workers(std::min(o.concurrency, pages ? *pages : o.concurrency));
    try {
      co_await smartasync::fan_out(
          std::move(workers), o.concurrency, [&](std::size_t) -> asio::awaitable<void> {
            while (!end || next_index < *end) {
              const std::size_t index = next_index++;
              std::size_t tries = 0;
              page_result page = co_await fetch_page(request_for(index, page_size), st, tries);
              check_same_total(st, index, page);
              if (sizes.size() <= index) {
                sizes.resize(index + 1, not_fetched);
                page_ends.resize(index + 1);
              }
              sizes[index] = page.records.size();
              if (!page.records.empty()) {
                page_ends[index] = ends_of(page.records);
                check_not_repeated(index);
              }
              if (page.records.empty() && until_empty) {
                if (!end || index < *end)
                  end = index;
                continue;
              }
              smartasync::semaphore_permit permit = co_await unwritten.async_acquire();
              if (write_error)
                std::rethrow_exception(write_error);
              start_write(ex, session, std::move(page.records), index, tries, st, write_error, std::move(permit));
            }
          });
    } catch (...) {
      fetch_error = std::current_exception();
    }
    // Wait for the writes in flight (whatever happened: they use the session and `st`).
    std::vector<smartasync::semaphore_permit> all;
    for (std::size_t i = 0; i < o.concurrency; ++i)
      all.push_back(co_await unwritten.async_acquire(
          asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable)));
    if (fetch_error)
      std::rethrow_exception(fetch_error);
    if (write_error)
      std::rethrow_exception(write_error);

    // 3. Proof that nothing is missing before anything is deleted.
    if (st.total_items && st.items_done != *st.total_items) {
      throw sync_error(fmt::format("the API announced {} items but served {}: the catalogue changed "
                                   "during the sync or a page was short",
                                   *st.total_items, st.items_done));
    }
    const std::size_t last = *end - 1; // the last page with items
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      if (i > last && sizes[i] != 0 && sizes[i] != not_fetched)
        throw sync_error(fmt::format("page {} came back empty but page {} had {} items: the catalogue changed "
                                     "during the sync",
                                     last + 2, i + 1, sizes[i]));
      if (i < last && sizes[i] != page_size)
        throw sync_error(fmt::format("page {} had {} items, fewer than the page size {}, and was not the last: "
                                     "the API's page size is not stable, records would be missed",
                                     i + 1, sizes[i], page_size));
    }
  }

  /// Only a next link / cursor: follow it, fetching page n+1 while page n is written.
  asio::awaitable<void> follow_next_links(const session_ptr& session, run_state& st, page_result first,
                                          std::size_t first_attempts, std::size_t page_size) {
    const sync_options& o = *options;
    page_result current = std::move(first);
    std::size_t index = 0;
    std::size_t current_attempts = first_attempts;
    auto ex = co_await asio::this_coro::executor;
    for (;;) {
      std::optional<page_request> next;
      const std::size_t n = current.records.size();
      if (o.style == pagination_style::page && current.next_url)
        next = page_request{index + 1, *current.next_url};
      else if (o.style == pagination_style::cursor && current.next_cursor && !current.next_cursor->empty())
        next = page_request{index + 1, with_params(o.url, {{o.names.cursor_param, *current.next_cursor},
                                                           {o.names.limit_param, std::to_string(page_size)}})};
      if (!next) { // the API said this is the last page
        co_await stage(session, std::move(current.records), index);
        page_staged(st, index, n, current_attempts);
        if (st.total_items && st.items_done != *st.total_items) // a cursor API may announce one too
          throw sync_error(fmt::format("the API announced {} items but served {}: the catalogue changed "
                                       "during the sync or a page was short",
                                       *st.total_items, st.items_done));
        co_return;
      }
      // Both at once; the first failure cancels the other (the write is shielded, so it
      // finishes first), and the group completes only when both have.
      std::size_t next_attempts = 0;
      auto [order, write_error, fetch_error, next_page] =
          co_await asio::experimental::make_parallel_group(
              asio::co_spawn(ex, stage(session, std::move(current.records), index), smartasync::deferred),
              asio::co_spawn(ex, fetch_page(*next, st, next_attempts), smartasync::deferred))
              .async_wait(asio::experimental::wait_for_one_error(), asio::use_awaitable);
      (void)order;
      if (write_error)
        std::rethrow_exception(write_error);
      if (fetch_error)
        std::rethrow_exception(fetch_error);
      page_staged(st, index, n, current_attempts);
      check_same_total(st, next->index, next_page);
      current = std::move(next_page);
      current_attempts = next_attempts;
      index = next->index;
      co_await throw_if_cancelled_now();
    }
  }
};

catalog_syncer::catalog_syncer(sync_options options) : impl_(std::make_unique<impl>(std::move(options))) {}

catalog_syncer::~catalog_syncer() = default;

const sync_options& catalog_syncer::options() const noexcept { return *impl_->options; }

smartasync::pool_metrics catalog_syncer::pool_metrics() const { return impl_->pool.metrics(); }

smartasync::lane_metrics catalog_syncer::database_metrics() const { return impl_->database.metrics(); }

void catalog_syncer::add_metrics_to(smartasync::metrics_registry& registry, const std::string& name) const {
  registry.add(name, impl_->pool);
  registry.add(name + " database", impl_->database);
}

asio::awaitable<catalog::sync_counts> catalog_syncer::run(std::filesystem::path db, event_sink on_event) {
  impl& s = *impl_;
  // Cancellation reaches the operations we await through their slots; between them we check
  // explicitly, so the cleanup below can still await the database.
  co_await asio::this_coro::throw_if_cancelled(false);
  impl::run_state st;
  st.sink = std::move(on_event);
  const auto start = clock::now();
  std::exception_ptr failure;
  commit_result committed;
  session_ptr session;
  try {
    session = co_await s.open(db);
    co_await s.fetch_all(session, st);
    co_await throw_if_cancelled_now();
    committed = co_await s.commit(session);
  } catch (...) {
    failure = std::current_exception();
  }
  // Close on the database lane: an uncommitted sync rolls back there, never concurrently
  // with a write still in progress.
  if (session) {
    try {
      co_await s.close(session);
    } catch (...) {
      if (!failure)
        failure = std::current_exception();
    }
  }
  if (failure) {
    const bool cancelled = is_abort(failure);
    bool refused = false;
    std::string message;
    if (cancelled) {
      message = "cancelled; nothing was committed, the catalogue is unchanged";
    } else {
      try {
        std::rethrow_exception(failure);
      } catch (const catalog::mass_deletion& e) {
        refused = true;
        message = fmt::format("the deletion guard stopped the commit: {}. An empty or partial answer (a filter "
                              "that matches nothing, a wrong URL) looks like this; if the API really removed "
                              "them, rerun with --allow-mass-delete (or a --max-delete-share above {:.0f}%)",
                              e.what(), s.options->max_delete_share * 100);
      } catch (const std::exception& e) {
        message = fmt::format("{}; nothing was committed, the catalogue is unchanged", e.what());
      } catch (...) {
        message = "unknown error; nothing was committed";
      }
    }
    st.emit(sync_failed{std::move(message), cancelled, refused});
    std::rethrow_exception(failure);
  }
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
  const double seconds = std::max(1e-6, std::chrono::duration<double>(clock::now() - start).count());
  st.emit(sync_completed{committed.counts, st.items_done, st.pages_done, st.retries, committed.duplicates,
                         committed.duplicate_names, elapsed, static_cast<double>(st.items_done) / seconds});
  co_return committed.counts;
}

// -----------------------------------------------------------------------------------------------
// Events to a synchronous consumer.

namespace {

// Events are produced synchronously (retry hooks, fan-out workers) on the producer's strand;
// one coroutine hands them to the stream, because synchronous callbacks cannot co_await emit().
struct event_pump {
  explicit event_pump(asio::any_io_executor ex) : wake(std::move(ex)) {}
  std::deque<sync_event> queue;
  asio::steady_timer wake;
  bool finished = false;
  asio::cancellation_signal stop_run;

  void push(sync_event e) {
    queue.push_back(std::move(e));
    wake.cancel();
  }
  sync_event pop() {
    sync_event e = std::move(queue.front());
    queue.pop_front();
    return e;
  }
  void finish() {
    finished = true;
    wake.cancel();
  }
  asio::awaitable<void> wait() {
    wake.expires_at(asio::steady_timer::time_point::max());
    co_await wake.async_wait(example::as_tuple(asio::use_awaitable));
  }
};

// Hands the oldest queued event to the consumer; false once the consumer has stopped (broke
// out of its loop, or destroyed the stream).
asio::awaitable<bool> forward_one(const smartasync::stream_writer<sync_event>& out, event_pump& pump) {
  std::exception_ptr stopped;
  try {
    co_await out.emit(pump.pop());
  } catch (...) {
    stopped = std::current_exception();
  }
  co_return !stopped;
}

event_sink sink_into(std::shared_ptr<event_pump> pump) {
  return [pump](const sync_event& e) { pump->push(e); };
}

asio::awaitable<void> run_to_pump(catalog_syncer& syncer, std::filesystem::path db,
                                  std::shared_ptr<event_pump> pump) {
  try {
    // HACK(gcc 12): built by a plain function and passed as a named object. A lambda converted
    // to std::function as a temporary inside this co_await expression had its captured
    // shared_ptr released twice (ASan: the pump was freed while still in use).
    event_sink sink = sink_into(pump);
    co_await syncer.run(std::move(db), std::move(sink));
  } catch (...) {
    // Reported as the sync_failed event.
  }
}

// Plain functions rather than code in the coroutine below: lambdas capturing the pump stay out
// of coroutine bodies (see the gcc 12 note in run_to_pump).
void watch_signals(asio::signal_set& signals, std::shared_ptr<event_pump> pump) {
  signals.async_wait([pump](std::error_code ec, int) {
    if (!ec)
      pump->stop_run.emit(asio::cancellation_type::terminal);
  });
}

// The run gets its own cancellation slot: the consumer stopping, or a signal, cancels it, and
// the pump still waits for it to finish (it uses the syncer and the database).
void start_run(asio::any_io_executor ex, catalog_syncer& syncer, std::filesystem::path db,
               std::shared_ptr<event_pump> pump) {
  auto& slot_source = pump->stop_run;
  asio::co_spawn(ex, run_to_pump(syncer, std::move(db), pump),
                 asio::bind_cancellation_slot(slot_source.slot(), [pump](std::exception_ptr) { pump->finish(); }));
}

// Takes the pump as a parameter, so that it is owned by the coroutine frame for the whole run.
asio::awaitable<void> pump_events(catalog_syncer& syncer, std::filesystem::path db, bool cancel_on_signals,
                                  smartasync::stream_writer<sync_event> out, std::shared_ptr<event_pump> pump,
                                  asio::any_io_executor ex) {
  std::optional<asio::signal_set> signals;
  if (cancel_on_signals) {
    signals.emplace(ex, SIGINT, SIGTERM);
    watch_signals(*signals, pump);
  }
  start_run(ex, syncer, std::move(db), pump);

  bool consumer_gone = false;
  for (;;) {
    while (!consumer_gone && !pump->queue.empty()) {
      const bool delivered = co_await forward_one(out, *pump);
      consumer_gone = !delivered;
    }
    if (pump->finished && (consumer_gone || pump->queue.empty()))
      break;
    asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    if (!consumer_gone && state.cancelled() != asio::cancellation_type::none)
      consumer_gone = true;
    if (consumer_gone)
      pump->stop_run.emit(asio::cancellation_type::terminal);
    co_await pump->wait();
  }
  if (signals)
    signals->cancel();
}

asio::awaitable<void> produce_events(catalog_syncer& syncer, std::filesystem::path db, bool cancel_on_signals,
                                     smartasync::stream_writer<sync_event> out) {
  co_await asio::this_coro::throw_if_cancelled(false);
  asio::any_io_executor ex = co_await asio::this_coro::executor;
  co_await pump_events(syncer, std::move(db), cancel_on_signals, std::move(out), std::make_shared<event_pump>(ex), ex);
}

} // namespace

std::unique_ptr<smartasync::sync_stream<sync_event>> sync_events(catalog_syncer& syncer, std::filesystem::path db,
                                                                 bool cancel_on_signals) {
  return std::make_unique<smartasync::sync_stream<sync_event>>(
      64, [&syncer, db = std::move(db), cancel_on_signals](smartasync::stream_writer<sync_event> out) {
        return produce_events(syncer, db, cancel_on_signals, std::move(out));
      });
}

} // namespace catalog_sync
