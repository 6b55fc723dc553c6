// catalog_sync/pagination.hpp - the three pagination conventions the example speaks.
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_SYNC_PAGINATION_HPP
#define CATALOG_SYNC_PAGINATION_HPP

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace catalog_sync {

/// How an API splits a collection into pages.
enum class pagination_style {
  /// `?offset=O&limit=L`, the body is `{"total": N, "items": [...]}`.
  offset,
  /// `?page=P&per_page=S` (1-based), the body is `[...]`; `X-Total-Count` and RFC 8288
  /// `Link: <...>; rel="next", <...>; rel="last"` headers describe the rest.
  page,
  /// `?cursor=C&limit=L`, the body is `{"items": [...], "next": "C2"}` (`null` at the end);
  /// the total is unknown.
  cursor,
};

/// Parameter, field and header names: how a particular API spells the conventions.
struct api_names {
  std::string offset_param = "offset";
  std::string limit_param = "limit";
  std::string page_param = "page";
  std::string per_page_param = "per_page";
  std::string cursor_param = "cursor";
  /// Where the records are in an object body (offset and cursor styles).
  std::string items_key = "items";
  std::string total_key = "total";
  std::string next_key = "next";
  std::string total_header = "X-Total-Count";
};

inline std::string_view to_string(pagination_style s) noexcept {
  switch (s) {
  case pagination_style::offset:
    return "offset";
  case pagination_style::page:
    return "page";
  case pagination_style::cursor:
    return "cursor";
  }
  return "?";
}

inline std::optional<pagination_style> parse_pagination_style(std::string_view s) noexcept {
  if (s == "offset")
    return pagination_style::offset;
  if (s == "page")
    return pagination_style::page;
  if (s == "cursor")
    return pagination_style::cursor;
  return std::nullopt;
}

} // namespace catalog_sync

#endif // CATALOG_SYNC_PAGINATION_HPP
