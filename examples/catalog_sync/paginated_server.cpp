// catalog_sync/paginated_server.cpp - the local paginated API.
// Distributed under the Boost Software License, Version 1.0.
#include "paginated_server.hpp"
#include "thread_priority.hpp"

#include <catalog/generator.hpp>
#include <catalog/json.hpp>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <span>
#include <stdexcept>
#include <thread>
#include <utility>

#include <sys/socket.h>
#include <zlib.h>

namespace catalog_sync {

std::string_view to_string(fault f) noexcept {
  switch (f) {
  case fault::none:
    return "none";
  case fault::rate_limited:
    return "429";
  case fault::server_error:
    return "5xx";
  case fault::truncated:
    return "truncated";
  case fault::malformed:
    return "malformed";
  case fault::slow:
    return "slow";
  case fault::bad_request:
    return "400";
  case fault::gzip_bomb:
    return "gzip-bomb";
  case fault::endless:
    return "endless";
  }
  return "?";
}

std::optional<fault> parse_fault(std::string_view s) noexcept {
  for (fault f : {fault::none, fault::rate_limited, fault::server_error, fault::truncated,
                  fault::malformed, fault::slow, fault::bad_request, fault::gzip_bomb, fault::endless})
    if (s == to_string(f))
      return f;
  return std::nullopt;
}

namespace {

// `size` zero bytes, gzip-compressed (about 1000:1): what a decompression bomb looks like.
std::string make_gzip_bomb(std::size_t size) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16 /* gzip */, 9, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  const std::vector<unsigned char> zeros(std::size_t{1} << 20);
  std::vector<unsigned char> out(std::size_t{64} << 10);
  std::string result;
  std::size_t left = size;
  int rc = Z_OK;
  do {
    const std::size_t n = std::min(left, zeros.size());
    left -= n;
    z.next_in = const_cast<unsigned char*>(zeros.data()); // zlib's API is not const-correct
    z.avail_in = static_cast<uInt>(n);
    const int flush = left == 0 ? Z_FINISH : Z_NO_FLUSH;
    do {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      rc = deflate(&z, flush);
      result.append(reinterpret_cast<const char*>(out.data()), out.size() - z.avail_out);
    } while (z.avail_out == 0);
  } while (left > 0);
  deflateEnd(&z);
  if (rc != Z_STREAM_END)
    throw std::runtime_error("deflate did not finish");
  return result;
}

constexpr std::uint64_t cursor_key = 0x5eed'c0de'2024'0007ULL;

// splitmix64: a tiny, portable, well-mixed hash; the same faults on every platform.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

double unit(std::uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

std::optional<std::size_t> parse_size(const httplib::Request& req, const char* name,
                                      std::size_t fallback) {
  if (!req.has_param(name))
    return fallback;
  const std::string v = req.get_param_value(name);
  std::size_t out = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || end != v.data() + v.size())
    return std::nullopt;
  return out;
}

} // namespace

std::pair<std::vector<catalog::catalog_record>, catalog::sync_counts>
edit_catalogue(std::vector<catalog::catalog_record> catalogue, std::size_t added) {
  catalog::sync_counts counts;
  std::vector<catalog::catalog_record> out;
  out.reserve(catalogue.size() + added);
  for (std::size_t i = 0; i < catalogue.size(); ++i) {
    if (i % 20 == 19) {
      ++counts.deleted;
      continue;
    }
    catalog::catalog_record r = std::move(catalogue[i]);
    if (i % 10 == 0) {
      r.version += "+edit1";
      ++counts.updated;
    } else {
      ++counts.unchanged;
    }
    out.push_back(std::move(r));
  }
  for (std::size_t i = 0; i < added; ++i) {
    out.push_back({fmt::format("zz-added-package-{}", i), "1.0", "misc", "Demo <demo@example.org>",
                   "A package added by the server-side edit\nIt shows up as added in the sync."});
    ++counts.added;
  }
  return {std::move(out), counts};
}

std::string encode_cursor(std::size_t offset) {
  return fmt::format("c1{:016x}", static_cast<std::uint64_t>(offset) ^ cursor_key);
}

std::optional<std::size_t> decode_cursor(std::string_view cursor) {
  if (cursor.size() != 18 || !cursor.starts_with("c1"))
    return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(cursor.data() + 2, cursor.data() + cursor.size(), v, 16);
  if (ec != std::errc() || end != cursor.data() + cursor.size())
    return std::nullopt;
  return static_cast<std::size_t>(v ^ cursor_key);
}

struct paginated_server::impl {
  server_options options;
  httplib::Server server;
  std::thread listener;
  int port = 0;

  mutable std::mutex mutex; // guards everything below
  // Kept as JSON, so that tests can serve what a record cannot hold (nulls, numbers, ...).
  std::shared_ptr<const std::vector<nlohmann::json>> catalogue;
  std::map<std::pair<int, std::size_t>, std::size_t> requests_per_page; // (style, page) -> n
  server_stats stats;
  std::size_t in_flight = 0;
  bool shifted = false; // server_options::shift_after_first_page happened
  std::shared_ptr<const std::string> gzip_bomb; // made on first use
  bool stopping = false;
  std::condition_variable stop_cv;
  // token bucket
  double tokens = 0;
  std::chrono::steady_clock::time_point refilled = std::chrono::steady_clock::now();

  // Sleeps unless the server is stopping; a stopping server must not wait for slow handlers.
  void sleep_for(std::chrono::milliseconds d) {
    std::unique_lock lock(mutex);
    stop_cv.wait_for(lock, d, [&] { return stopping; });
  }

  // Takes a token; when none is left returns how long until one is (for Retry-After).
  std::optional<double> take_token() {
    if (options.rate_limit <= 0)
      return std::nullopt;
    std::lock_guard lock(mutex);
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - refilled).count();
    refilled = now;
    tokens = std::min(options.rate_limit, tokens + elapsed * options.rate_limit);
    if (tokens >= 1) {
      tokens -= 1;
      return std::nullopt;
    }
    return (1 - tokens) / options.rate_limit;
  }

  // The fault for this request of `page`, and the page's jitter draw.
  std::pair<fault, double> decide(pagination_style style, std::size_t page) {
    std::size_t n = 0;
    scripted_fault scripted;
    bool has_script = false;
    {
      std::lock_guard lock(mutex);
      n = ++requests_per_page[{static_cast<int>(style), page}];
      if (auto it = options.script.find(page); it != options.script.end()) {
        scripted = it->second;
        has_script = true;
      }
    }
    const std::uint64_t h = mix(options.seed ^ mix(page * 0x100000001b3ULL + n));
    const double jitter_draw = unit(mix(h));
    if (has_script) {
      if (scripted.times == 0 || n <= scripted.times)
        return {scripted.kind, jitter_draw};
      return {fault::none, jitter_draw};
    }
    double x = unit(h);
    const std::pair<double, fault> rates[] = {{options.rate_429, fault::rate_limited},
                                              {options.rate_5xx, fault::server_error},
                                              {options.rate_truncated, fault::truncated},
                                              {options.rate_malformed, fault::malformed},
                                              {options.rate_slow, fault::slow}};
    for (auto [rate, kind] : rates) {
      if (x < rate)
        return {kind, jitter_draw};
      x -= rate;
    }
    return {fault::none, jitter_draw};
  }

  void count(std::size_t server_stats::*field) {
    std::lock_guard lock(mutex);
    ++(stats.*field);
  }

  // Counts the handlers running at once: what "K requests in flight" means to a server.
  struct in_flight_scope {
    impl* self;
    explicit in_flight_scope(impl* s) : self(s) {
      std::lock_guard lock(self->mutex);
      ++self->stats.requests;
      self->stats.max_in_flight = std::max(self->stats.max_in_flight, ++self->in_flight);
    }
    ~in_flight_scope() {
      std::lock_guard lock(self->mutex);
      --self->in_flight;
    }
    in_flight_scope(const in_flight_scope&) = delete;
    in_flight_scope& operator=(const in_flight_scope&) = delete;
  };

  std::shared_ptr<const std::vector<nlohmann::json>> snapshot() const {
    std::lock_guard lock(mutex);
    return catalogue;
  }

  static std::shared_ptr<const std::vector<nlohmann::json>> to_items(std::vector<catalog::catalog_record> records) {
    std::vector<nlohmann::json> items;
    items.reserve(records.size());
    for (auto& r : records)
      items.emplace_back(std::move(r));
    return std::make_shared<const std::vector<nlohmann::json>>(std::move(items));
  }

  // `?section=S`: the records of that section only (a filter that matches nothing is empty).
  static std::shared_ptr<const std::vector<nlohmann::json>>
  filtered(std::shared_ptr<const std::vector<nlohmann::json>> all, const httplib::Request& req) {
    if (!req.has_param("section"))
      return all;
    const std::string section = req.get_param_value("section");
    std::vector<nlohmann::json> out;
    for (const auto& item : *all)
      if (item.is_object() && item.contains("section") && item["section"] == section)
        out.push_back(item);
    return std::make_shared<const std::vector<nlohmann::json>>(std::move(out));
  }

  std::size_t announced(std::size_t total) const {
    return static_cast<std::size_t>(std::max(0L, static_cast<long>(total) + options.total_skew));
  }

  // The items serialised straight into the body: no copy of the JSON values per request.
  static std::string items_json(std::span<const nlohmann::json> items) {
    std::string out = "[";
    for (const auto& item : items) {
      if (out.size() > 1)
        out += ',';
      out += item.dump();
    }
    out += ']';
    return out;
  }

  static void error_body(httplib::Response& res, int status, std::string_view message) {
    res.status = status;
    res.set_content(nlohmann::json{{"error", message}}.dump(), "application/json");
  }

  std::string page_link(std::size_t page, std::size_t per_page, const std::string& section) const {
    return fmt::format("<http://{}:{}/page/packages?{}page={}&per_page={}>", options.host, port,
                       section.empty() ? "" : fmt::format("section={}&", section), page, per_page);
  }

  // Made when a script asks for one (it takes a second or so): a response must not wait for it.
  void prepare_gzip_bomb() {
    {
      std::lock_guard lock(mutex);
      if (gzip_bomb || std::none_of(options.script.begin(), options.script.end(),
                                    [](const auto& s) { return s.second.kind == fault::gzip_bomb; }))
        return;
    }
    auto bomb = std::make_shared<const std::string>(make_gzip_bomb(options.gzip_bomb_bytes));
    std::lock_guard lock(mutex);
    gzip_bomb = std::move(bomb);
  }

  // The collection changes under the client once its first page is out: new records in front.
  void shift_once() {
    if (options.shift_after_first_page == 0)
      return;
    std::lock_guard lock(mutex);
    if (shifted)
      return;
    shifted = true;
    auto next = std::make_shared<std::vector<nlohmann::json>>();
    next->reserve(catalogue->size() + options.shift_after_first_page);
    for (std::size_t i = 0; i < options.shift_after_first_page; ++i) {
      auto r = catalog::generate_record(i, options.seed);
      r.name = fmt::format("inserted-during-the-sync-{}", i);
      next->emplace_back(std::move(r));
    }
    next->insert(next->end(), catalogue->begin(), catalogue->end());
    catalogue = std::move(next);
  }

  // One page request: parse, decide the fault, wait the latency, answer.
  void serve(pagination_style style, const httplib::Request& req, httplib::Response& res) {
    // Once per handler thread (each belongs to this server's own pool).
    static thread_local const bool niced = (set_this_thread_nice(options.thread_nice), true);
    (void)niced;
    in_flight_scope scope(this);
    auto all = filtered(snapshot(), req);
    const std::string section = req.has_param("section") ? req.get_param_value("section") : "";
    const std::size_t total = all->size();

    // 1. Parse the convention's parameters.
    std::size_t offset = 0, limit = 0, page_number = 1;
    switch (style) {
    case pagination_style::offset: {
      auto o = parse_size(req, "offset", 0);
      auto l = parse_size(req, "limit", 100);
      if (!o || !l || *l == 0)
        return count(&server_stats::bad_requests), error_body(res, 400, "bad offset or limit");
      offset = *o;
      limit = *l;
      break;
    }
    case pagination_style::page: {
      auto p = parse_size(req, "page", 1);
      auto s = parse_size(req, "per_page", 100);
      if (!p || !s || *p == 0 || *s == 0)
        return count(&server_stats::bad_requests), error_body(res, 400, "bad page or per_page");
      limit = std::min(*s, options.max_page_size);
      page_number = *p;
      offset = (page_number - 1) * limit;
      break;
    }
    case pagination_style::cursor: {
      auto l = parse_size(req, "limit", 100);
      if (!l || *l == 0)
        return count(&server_stats::bad_requests), error_body(res, 400, "bad limit");
      limit = *l;
      if (req.has_param("cursor")) {
        auto o = decode_cursor(req.get_param_value("cursor"));
        if (!o)
          return count(&server_stats::bad_requests), error_body(res, 400, "bad cursor");
        offset = *o;
      }
      break;
    }
    }
    limit = std::min(limit, options.max_page_size);
    const std::size_t page_index = offset / limit;

    // 2. A real rate limit (timing-dependent), then the seeded faults.
    if (auto wait = take_token()) {
      count(&server_stats::rate_limited);
      res.set_header("Retry-After", std::to_string(static_cast<long>(std::ceil(*wait))));
      return error_body(res, 429, "rate limit exceeded");
    }
    auto [kind, jitter_draw] = decide(style, page_index);
    sleep_for(options.latency + std::chrono::milliseconds(static_cast<long>(
                                    jitter_draw * static_cast<double>(options.jitter.count()))));
    switch (kind) {
    case fault::rate_limited:
      count(&server_stats::rate_limited);
      res.set_header("Retry-After", std::to_string(options.retry_after_seconds));
      return error_body(res, 429, "rate limit exceeded (injected)");
    case fault::server_error: {
      count(&server_stats::server_errors);
      const int codes[] = {500, 502, 503};
      return error_body(res, codes[page_index % 3], "internal error (injected)");
    }
    case fault::bad_request:
      count(&server_stats::bad_requests);
      return error_body(res, 400, "bad request (injected)");
    case fault::slow:
      count(&server_stats::slow);
      sleep_for(options.slow_delay);
      break;
    case fault::gzip_bomb: {
      count(&server_stats::gzip_bombs);
      std::shared_ptr<const std::string> bomb;
      {
        std::lock_guard lock(mutex);
        bomb = gzip_bomb;
      }
      if (!bomb) // a request racing set_script
        bomb = std::make_shared<const std::string>(make_gzip_bomb(options.gzip_bomb_bytes));
      // A content provider of known length: cpp-httplib sends it as is (no compression of its own).
      res.set_header("Content-Encoding", "gzip");
      res.set_content_provider(bomb->size(), "application/json",
                               [bomb](std::size_t offset_in, std::size_t length, httplib::DataSink& sink) {
                                 return sink.write(bomb->data() + offset_in, std::min(length, bomb->size() - offset_in));
                               });
      return;
    }
    case fault::endless: {
      count(&server_stats::endless);
      res.set_chunked_content_provider("application/json", [this](std::size_t offset_in, httplib::DataSink& sink) {
        static const std::string item = [] {
          std::string one = R"({"name":"endless","description":")" + std::string(4000, 'x') + R"("},)";
          std::string many;
          for (int i = 0; i < 16; ++i)
            many += one;
          return many;
        }();
        if (offset_in == 0 && !sink.write("[", 1))
          return false;
        {
          std::lock_guard lock(mutex);
          if (stopping)
            return false;
        }
        return sink.write(item.data(), item.size()); // false once the client has hung up
      });
      return;
    }
    case fault::none:
    case fault::truncated:
    case fault::malformed:
      break;
    }

    // 3. The page itself.
    const std::size_t begin = std::min(offset, total);
    const std::size_t end = std::min(total, begin + limit);
    const std::span<const nlohmann::json> items(all->data() + begin, end - begin);
    std::string body;
    switch (style) {
    case pagination_style::offset:
      if (options.bare_offset_pages)
        body = items_json(items);
      else
        body = fmt::format(R"({{"total":{},"offset":{},"limit":{},"items":{}}})", announced(total), offset, limit,
                           items_json(items));
      if (options.offset_total_header)
        res.set_header("X-Total-Count", std::to_string(announced(total)));
      break;
    case pagination_style::page: {
      body = items_json(items);
      const std::size_t last = std::max<std::size_t>(1, (total + limit - 1) / limit);
      std::string link = fmt::format("{}; rel=\"first\", {}; rel=\"last\"", page_link(1, limit, section),
                                     page_link(last, limit, section));
      if (page_number < last)
        link = fmt::format("{}; rel=\"next\", {}", page_link(page_number + 1, limit, section), link);
      if (page_number > 1)
        link = fmt::format("{}; rel=\"prev\", {}", page_link(page_number - 1, limit, section), link);
      res.set_header("Link", link);
      res.set_header("X-Total-Count", std::to_string(announced(total)));
      break;
    }
    case pagination_style::cursor: {
      nlohmann::json next = nullptr;
      if (end < total)
        next = encode_cursor(end);
      body = fmt::format(R"({{"items":{},"next":{}}})", items_json(items), next.dump());
      break;
    }
    }

    shift_once();

    if (kind == fault::malformed) {
      count(&server_stats::malformed);
      body.resize(body.size() / 2);
    } else if (kind == fault::truncated) {
      // Promise the whole body, deliver half, hang up: the client sees a short read.
      count(&server_stats::truncated);
      auto shared = std::make_shared<std::string>(std::move(body));
      res.set_content_provider(shared->size(), "application/json",
                               [shared](std::size_t offset_in, std::size_t, httplib::DataSink& sink) {
                                 if (offset_in == 0)
                                   sink.write(shared->data(), shared->size() / 2);
                                 return false; // abort: the connection is closed
                               });
      return;
    } else {
      count(&server_stats::ok);
    }
    res.set_content(std::move(body), "application/json");
  }
};

paginated_server::paginated_server(std::vector<catalog::catalog_record> catalogue,
                                   server_options options)
    : impl_(std::make_unique<impl>()) {
  impl& s = *impl_;
  s.options = std::move(options);
  s.catalogue = impl::to_items(std::move(catalogue));
  s.tokens = s.options.rate_limit;
  s.prepare_gzip_bomb();
  const std::size_t threads = std::max<std::size_t>(1, s.options.threads);
  s.server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.server.set_keep_alive_max_count(100000);
  s.server.set_keep_alive_timeout(5);
  s.server.set_tcp_nodelay(true);
  s.server.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"ok":true})", "application/json");
  });
  s.server.Get("/offset/packages", [&s](const httplib::Request& req, httplib::Response& res) {
    s.serve(pagination_style::offset, req, res);
  });
  s.server.Get("/page/packages", [&s](const httplib::Request& req, httplib::Response& res) {
    s.serve(pagination_style::page, req, res);
  });
  s.server.Get("/cursor/packages", [&s](const httplib::Request& req, httplib::Response& res) {
    s.serve(pagination_style::cursor, req, res);
  });

  // cpp-httplib 0.11 listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, compiled into
  // Debian's library): 16 or 64 clients connecting at once overflow it and wait for a SYN
  // retransmission (1 s). Remember the socket, and listen again with a real backlog below.
  auto listen_socket = std::make_shared<std::atomic<int>>(-1);
  s.server.set_socket_options([listen_socket](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_socket->store(sock);
  });
  if (s.options.port == 0) {
    s.port = s.server.bind_to_any_port(s.options.host);
  } else {
    s.port = s.server.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1;
  }
  if (s.port <= 0)
    throw std::runtime_error(fmt::format("cannot listen on {}:{}", s.options.host, s.options.port));
  if (int sock = listen_socket->load(); sock >= 0)
    ::listen(sock, 1024); // a listening socket may listen again: this only raises the backlog
  s.listener = std::thread([&s] { s.server.listen_after_bind(); });
  // The socket already listens (connections queue in the backlog); wait for the accept loop
  // anyway so that stop() right after construction is well defined.
  while (!s.server.is_running())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

paginated_server::~paginated_server() { stop(); }

void paginated_server::stop() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->stop_cv.notify_all();
  impl_->server.stop();
  if (impl_->listener.joinable())
    impl_->listener.join();
}

int paginated_server::port() const noexcept { return impl_->port; }

std::string paginated_server::base_url() const {
  return fmt::format("http://{}:{}", impl_->options.host, impl_->port);
}

std::string paginated_server::url(pagination_style style) const {
  return fmt::format("{}/{}/packages", base_url(), to_string(style));
}

void paginated_server::set_catalogue(std::vector<catalog::catalog_record> catalogue) {
  auto next = impl::to_items(std::move(catalogue));
  std::lock_guard lock(impl_->mutex);
  impl_->catalogue = std::move(next);
}

void paginated_server::set_items(nlohmann::json items) {
  if (!items.is_array())
    throw std::invalid_argument("paginated_server::set_items needs a JSON array");
  auto next = std::make_shared<const std::vector<nlohmann::json>>(items.get<std::vector<nlohmann::json>>());
  std::lock_guard lock(impl_->mutex);
  impl_->catalogue = std::move(next);
}

void paginated_server::set_script(std::map<std::size_t, scripted_fault> script) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->options.script = std::move(script);
    impl_->requests_per_page.clear();
  }
  impl_->prepare_gzip_bomb();
}

server_stats paginated_server::stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->stats;
}

void paginated_server::reset_stats() {
  std::lock_guard lock(impl_->mutex);
  impl_->stats = server_stats{};
  impl_->stats.max_in_flight = impl_->in_flight;
}

} // namespace catalog_sync
