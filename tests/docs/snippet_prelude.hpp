// The names smartasync's documentation takes for granted (a database, a pool, an io_context,
// ...), declared so that its code blocks compile. Only compiled, never linked: extern
// declarations suffice. See tests/docs/extract_snippets.py.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_TESTS_DOCS_SNIPPET_PRELUDE_HPP
#define SMARTASYNC_TESTS_DOCS_SNIPPET_PRELUDE_HPP

#include <smartasync/smartasync.hpp>

#include "common/asio_flavour.hpp"

#include SMARTASYNC_ASIO_HEADER(awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(co_spawn.hpp)
#include SMARTASYNC_ASIO_HEADER(detached.hpp)
#include SMARTASYNC_ASIO_HEADER(experimental/awaitable_operators.hpp)
#include SMARTASYNC_ASIO_HEADER(io_context.hpp)
#include SMARTASYNC_ASIO_HEADER(steady_timer.hpp)
#include SMARTASYNC_ASIO_HEADER(use_awaitable.hpp)
#include SMARTASYNC_ASIO_HEADER(use_future.hpp)
#include <cstdlib> // see smartasync/detail/format.hpp
#include <fmt/format.h>

#include <chrono>
#include <exception>
#include <future>
#include <string>
#include <vector>

using namespace std::chrono_literals;

struct row {
  std::string name;
};
using rows = std::vector<row>;

struct database {
  std::vector<row> search(const std::string& query) const;
  std::string get(const std::string& key) const;
  std::vector<row> query(const std::string& sql) const;
};

struct request {
  std::string sql;
};

struct page {
  std::vector<row> items;
};

struct logger {
  template <typename... Args>
  void warn(fmt::format_string<Args...> format, Args&&... args);
};

extern database db;
extern asio::io_context io;
extern asio::any_io_executor ex;
extern std::vector<std::string> urls;
extern smartasync::any_smart_async_function<std::vector<row>(std::string)> query;
asio::awaitable<void> send(const request& r, const std::vector<row>& result);
asio::awaitable<page> fetch(const std::string& url);
asio::awaitable<int> count();
asio::awaitable<void> publish(int value);

// The locals a function-body snippet may use (a lambda can capture only locals).
#define SMARTASYNC_SNIPPET_LOCALS                                                                   \
  [[maybe_unused]] database db;                                                                   \
  [[maybe_unused]] smartasync::blocking_pool& pool = smartasync::default_pool();                  \
  [[maybe_unused]] asio::io_context& ioc = ::io;                                                  \
  [[maybe_unused]] asio::steady_timer timer(ioc);                                                 \
  [[maybe_unused]] logger log;                                                                    \
  [[maybe_unused]] smartasync::any_smart_async_function<std::string(std::string)> lookup =              \
      smartasync::smart_async(pool, [&db](std::string key) { return db.get(key); });

#endif // SMARTASYNC_TESTS_DOCS_SNIPPET_PRELUDE_HPP
