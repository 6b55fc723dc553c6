// catalog_sync/http_client.cpp - the blocking libcurl GET.
// Distributed under the Boost Software License, Version 1.0.
#include "http_client.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <system_error>

namespace catalog_sync {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// curl_global_init is not thread-safe; call it once before the first handle.
void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw std::runtime_error("curl_global_init failed");
  });
}

// One easy handle per thread: libcurl keeps its connection cache in the handle, so a pool
// worker reuses its keep-alive connection for every page it fetches.
struct thread_handle {
  CURL* curl = nullptr;
  thread_handle() {
    global_init();
    curl = curl_easy_init();
    if (!curl)
      throw std::runtime_error("curl_easy_init failed");
  }
  ~thread_handle() { curl_easy_cleanup(curl); }
  thread_handle(const thread_handle&) = delete;
  thread_handle& operator=(const thread_handle&) = delete;
};

struct transfer {
  http_response response;
  std::stop_token stop;
  std::size_t max_body = 0;
  bool too_large = false;
};

// libcurl hands over the body decompressed, so this is where the cap sees its real size.
// Returning less than given aborts the transfer (CURLE_WRITE_ERROR).
size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto& t = *static_cast<transfer*>(user);
  const std::size_t n = size * count;
  if (n > t.max_body - t.response.body.size()) {
    t.too_large = true;
    return 0;
  }
  t.response.body.append(data, n);
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto& response = static_cast<transfer*>(user)->response;
  const std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    response.headers.clear(); // a new response (after a redirect or 100-continue)
  } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
    response.headers.emplace_back(lower(trim(line.substr(0, colon))),
                                  std::string(trim(line.substr(colon + 1))));
  }
  return size * count;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<transfer*>(user)->stop.stop_requested() ? 1 : 0;
}

struct slist_deleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};

} // namespace

std::optional<std::string> http_response::header(std::string_view name) const {
  const std::string key = lower(name);
  for (const auto& [k, v] : headers)
    if (k == key)
      return v;
  return std::nullopt;
}

response_too_large::response_too_large(std::size_t limit)
    : std::runtime_error(fmt::format("response body over {} bytes (the cap, counted decompressed)", limit)),
      limit_(limit) {}

bool transport_error::timed_out() const noexcept {
  return curl_code_ == CURLE_OPERATION_TIMEDOUT;
}

http_response http_get(std::stop_token stop, const std::string& url, const http_options& options) {
  const http_timeouts& timeouts = options.timeouts;
  thread_local thread_handle handle;
  CURL* curl = handle.curl;
  // reset keeps the connection cache: that is the point of one handle per thread.
  curl_easy_reset(curl);

  std::unique_ptr<curl_slist, slist_deleter> header_list;
  for (const auto& h : options.headers) {
    curl_slist* next = curl_slist_append(header_list.get(), h.c_str());
    if (!next)
      throw std::bad_alloc();
    (void)header_list.release();
    header_list.reset(next);
  }

  transfer t{{}, std::move(stop), options.max_body_bytes};
  char error_text[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); // no SIGALRM for DNS timeouts: we are threaded
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeouts.connect.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeouts.total.count()));
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
  // gzip: cheap for both sides (brotli at the server default quality costs tens of ms a page).
  if (options.compression)
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "gzip");
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "smartasync-catalog-sync/1.0");
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_text);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
  if (header_list)
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list.get());
  // An announced Content-Length over the cap fails before a byte is read. It is the size on the
  // wire (compressed), so this alone bounds nothing: on_body counts what gzip inflates to.
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_body_bytes));

  const CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_ABORTED_BY_CALLBACK)
    throw std::system_error(std::make_error_code(std::errc::operation_canceled), "GET " + url);
  if (t.too_large || rc == CURLE_FILESIZE_EXCEEDED)
    throw response_too_large(options.max_body_bytes);
  if (rc != CURLE_OK) {
    throw transport_error(static_cast<int>(rc),
                          fmt::format("{}{}{}", curl_easy_strerror(rc), error_text[0] ? ": " : "",
                                      error_text));
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &t.response.status);
  return std::move(t.response);
}

} // namespace catalog_sync
