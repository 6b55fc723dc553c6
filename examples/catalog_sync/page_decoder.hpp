// catalog_sync/page_decoder.hpp - one page response (a 2xx body and its headers) -> records,
// the total, and where the next page is.
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_SYNC_PAGE_DECODER_HPP
#define CATALOG_SYNC_PAGE_DECODER_HPP

#include "http_headers.hpp"
#include "pagination.hpp"

#include <catalog/json.hpp>
#include <catalog/record.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace catalog_sync {

/// What one page says: its records, and how to find the rest.
struct page_result {
  std::vector<catalog::catalog_record> records;
  std::optional<std::size_t> total;      // items, when the API says
  std::optional<std::size_t> last_page;  // 1-based, from Link rel="last"
  std::optional<std::string> next_url;   // Link rel="next", or the URL built from a cursor
  std::optional<std::string> next_cursor;
};

/// One failed attempt at a page; `retryable` says whether another attempt may succeed.
class fetch_failure : public std::runtime_error {
public:
  fetch_failure(std::string reason, bool retryable,
                std::optional<std::chrono::milliseconds> retry_after = {})
      : std::runtime_error(std::move(reason)), retryable_(retryable), retry_after_(retry_after) {}
  bool retryable() const noexcept { return retryable_; }
  std::optional<std::chrono::milliseconds> retry_after() const noexcept { return retry_after_; }

private:
  bool retryable_;
  std::optional<std::chrono::milliseconds> retry_after_;
};

/// A whole decimal number, nothing else ("12"; not "12 ", "-1" or "1e3"), or nullopt.
inline std::optional<std::size_t> to_size(std::string_view s) {
  std::size_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size())
    return std::nullopt;
  return v;
}

/// The array of records in a page body: the body itself, or its `key` member.
/// @throws fetch_failure (not retryable) when there is none.
inline const nlohmann::json& items_of(const nlohmann::json& body, const std::string& key) {
  if (body.is_array())
    return body;
  // Valid JSON of the wrong shape is what the server meant to send: retrying cannot change it.
  if (!body.is_object() || !body.contains(key) || !body.at(key).is_array())
    throw fetch_failure(fmt::format("malformed page: no \"{}\" array in the body", key), false);
  return body.at(key);
}

/// The parts of a successful (2xx) page response the decoder reads.
struct page_response {
  std::string_view body;
  /// The total header (api_names::total_header), if the response has one.
  std::optional<std::string> total_header;
  /// The Link header, if any.
  std::optional<std::string> link;
};

/// Decodes one page: one record per item of the body's array, in order; the total from the
/// body (api_names::total_key), else from the total header; in `page` style the next and last
/// pages from the Link header; in `cursor` style the next cursor from the body.
/**
 * @throws fetch_failure: retryable when the body is not JSON (a truncated or garbled body may
 *         come whole next time); not retryable when it is JSON of the wrong shape, when an
 *         item is not a valid record (naming the item and its name), or when a record is over
 *         catalog::max_record_bytes. The same bytes decode the same way on every attempt.
 */
inline page_result decode_page(const page_response& response, pagination_style style,
                               const api_names& names) {
  nlohmann::json body;
  try {
    body = nlohmann::json::parse(response.body);
  } catch (const nlohmann::json::exception& e) {
    throw fetch_failure(fmt::format("malformed JSON ({} bytes): {}", response.body.size(), e.what()),
                        true);
  }

  page_result page;
  const nlohmann::json& items = items_of(body, names.items_key);
  page.records.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    try {
      page.records.push_back(items[i].get<catalog::catalog_record>());
    } catch (const std::exception& e) { // catalog::invalid_record, or nlohmann's own
      // Deterministic: the same bytes parse the same way on every attempt, so not retried.
      std::string name;
      if (items[i].is_object() && items[i].contains("name") && items[i]["name"].is_string())
        name = fmt::format(" (name \"{}\")", items[i]["name"].get<std::string>());
      throw fetch_failure(fmt::format("malformed record: item {} of the page{}: {}", i, name, e.what()), false);
    }
    // The catalogue refuses it anyway; refused here, the message names the page and the item.
    if (const std::size_t bytes = catalog::record_bytes(page.records.back()); bytes > catalog::max_record_bytes)
      throw fetch_failure(fmt::format("record too large: item {} of the page (name \"{}\"): {} bytes, over the "
                                      "cap of {} bytes per record",
                                      i, page.records.back().name.substr(0, 100), bytes, catalog::max_record_bytes),
                          false);
  }

  // The total, in every style: from the body, else from the header.
  if (body.is_object() && body.contains(names.total_key) && body.at(names.total_key).is_number_unsigned())
    page.total = body.at(names.total_key).get<std::size_t>();
  else if (response.total_header)
    page.total = to_size(*response.total_header);

  switch (style) {
  case pagination_style::offset:
    break;
  case pagination_style::page:
    if (response.link) {
      page.next_url = link_with_rel(*response.link, "next");
      if (auto last = link_with_rel(*response.link, "last"))
        if (auto p = query_param(*last, names.page_param))
          page.last_page = to_size(*p);
    }
    break;
  case pagination_style::cursor:
    if (body.is_object() && body.contains(names.next_key) && body.at(names.next_key).is_string())
      page.next_cursor = body.at(names.next_key).get<std::string>();
    break;
  }
  return page;
}

} // namespace catalog_sync

#endif // CATALOG_SYNC_PAGE_DECODER_HPP
