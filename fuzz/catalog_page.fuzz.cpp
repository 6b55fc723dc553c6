// fuzz/catalog_page.fuzz.cpp - catalog_sync's page decoder (JSON body and headers -> records,
// total, next page), on pages encoded as the example's server encodes them and on any bytes.
// Distributed under the Boost Software License, Version 1.0.
//
// Properties, not only "no crash":
//  * a page encoded from records, in any of the three pagination styles (offset with its
//    object or bare body and optional X-Total-Count, page with its Link header, cursor with
//    its next cursor or null), decodes to exactly those records, in order, with the total,
//    the next URL and last page, or the next cursor it was encoded with;
//  * any bytes as a body (with any total and Link headers) decode or fail with fetch_failure,
//    nothing else; a decoded page has one record per item of the body's array.
#define FUZZ_TARGET_NAME "catalog_page"
#include "property.hpp"

#include "page_decoder.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace {

using nlohmann::json;
using catalog_sync::pagination_style;

bool valid_utf8(const std::string& s) {
  try {
    (void)json(s).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

// The example server's page link (paginated_server.cpp), with the section filter it may carry.
std::string page_link(std::size_t page, std::size_t per_page, const std::string& section) {
  return fmt::format("<http://127.0.0.1:8080/page/packages?{}page={}&per_page={}>",
                     section.empty() ? "" : fmt::format("section={}&", section), page, per_page);
}

// Items serialised one by one into the body, as the server does (items_json).
std::string items_json(const std::vector<catalog::catalog_record>& records) {
  std::string out = "[";
  for (const auto& r : records) {
    if (out.size() > 1)
      out += ',';
    out += json(r).dump();
  }
  return out + ']';
}

void check_encoded(FuzzedDataProvider& in) {
  const auto style = static_cast<pagination_style>(in.ConsumeIntegralInRange<int>(0, 2));
  std::vector<catalog::catalog_record> records(in.ConsumeIntegralInRange<std::size_t>(0, 8));
  for (auto& r : records) {
    r.name = in.ConsumeRandomLengthString(32);
    r.version = in.ConsumeRandomLengthString(12);
    r.section = in.ConsumeRandomLengthString(12);
    r.maintainer = in.ConsumeRandomLengthString(24);
    r.description = in.ConsumeRandomLengthString(64);
    // The server serves what it has as JSON: text that is not UTF-8 never reaches a page.
    for (std::string* field : {&r.name, &r.version, &r.section, &r.maintainer, &r.description})
      if (!valid_utf8(*field))
        field->clear();
  }
  const std::size_t total = in.ConsumeIntegral<std::uint32_t>();
  catalog_sync::page_response response;
  std::string body;
  std::optional<std::size_t> expected_total;
  std::optional<std::string> expected_next, expected_cursor;
  std::optional<std::size_t> expected_last;
  switch (style) {
  case pagination_style::offset:
    if (in.ConsumeBool()) {
      body = items_json(records); // a bare array: the total only in the header, if at all
    } else {
      body = fmt::format(R"({{"total":{},"offset":{},"limit":{},"items":{}}})", total,
                         in.ConsumeIntegral<std::uint16_t>(), records.size(), items_json(records));
      expected_total = total;
    }
    if (in.ConsumeBool()) {
      response.total_header = std::to_string(total);
      expected_total = total;
    }
    break;
  case pagination_style::page: {
    body = items_json(records);
    const std::string section = in.ConsumeBool() ? "web" : "";
    const std::size_t per_page = 1 + in.ConsumeIntegral<std::uint8_t>();
    const std::size_t last = 1 + in.ConsumeIntegral<std::uint16_t>();
    const std::size_t page = in.ConsumeIntegralInRange<std::size_t>(1, last);
    std::string link = fmt::format("{}; rel=\"first\", {}; rel=\"last\"", page_link(1, per_page, section),
                                   page_link(last, per_page, section));
    if (page < last) {
      link = fmt::format("{}; rel=\"next\", {}", page_link(page + 1, per_page, section), link);
      const std::string next = page_link(page + 1, per_page, section);
      expected_next = next.substr(1, next.size() - 2);
    }
    if (page > 1)
      link = fmt::format("{}; rel=\"prev\", {}", page_link(page - 1, per_page, section), link);
    response.link = link;
    expected_last = last;
    response.total_header = std::to_string(total);
    expected_total = total;
    break;
  }
  case pagination_style::cursor: {
    json next = nullptr;
    if (in.ConsumeBool()) {
      std::string cursor = in.ConsumeRandomLengthString(24);
      if (!valid_utf8(cursor))
        cursor = "c";
      next = cursor;
      expected_cursor = cursor;
    }
    body = fmt::format(R"({{"items":{},"next":{}}})", items_json(records), next.dump());
    break;
  }
  }
  response.body = body;
  catalog_sync::page_result page;
  try {
    page = catalog_sync::decode_page(response, style, catalog_sync::api_names{});
  } catch (const catalog_sync::fetch_failure& e) {
    std::fprintf(stderr, "%s\n", e.what());
    ::fuzz::property_violated(FUZZ_TARGET_NAME, "an encoded page decodes");
  }
  FUZZ_CHECK(page.records.size() == records.size(), "a decoded page has as many records as were encoded");
  FUZZ_CHECK(page.records == records, "a decoded page has the records that were encoded, in order");
  FUZZ_CHECK(page.total == expected_total, "a decoded page has the total it was encoded with");
  FUZZ_CHECK(page.next_url == expected_next, "a decoded page has its Link rel=\"next\" URL");
  FUZZ_CHECK(page.last_page == expected_last, "a decoded page has its Link rel=\"last\" page number");
  FUZZ_CHECK(page.next_cursor == expected_cursor, "a decoded page has its next cursor");
}

void check_any(FuzzedDataProvider& in) {
  const auto style = static_cast<pagination_style>(in.ConsumeIntegralInRange<int>(0, 2));
  catalog_sync::page_response response;
  if (in.ConsumeBool())
    response.total_header = in.ConsumeRandomLengthString(24);
  if (in.ConsumeBool())
    response.link = in.ConsumeRandomLengthString(128);
  const std::string body = in.ConsumeRemainingBytesAsString();
  response.body = body;
  catalog_sync::page_result page;
  try {
    page = catalog_sync::decode_page(response, style, catalog_sync::api_names{});
  } catch (const catalog_sync::fetch_failure&) {
    return; // a clear error, retryable or not
  } catch (...) {
    ::fuzz::property_violated(FUZZ_TARGET_NAME, "a bad page fails with fetch_failure, nothing else");
  }
  const json parsed = json::parse(body); // it decoded, so it parses
  const json& items = parsed.is_array() ? parsed : parsed.at("items");
  FUZZ_CHECK(page.records.size() == items.size(), "a decoded page has one record per item");
  if (page.next_url)
    FUZZ_CHECK(response.link && response.link->find('<' + *page.next_url + '>') != std::string::npos,
               "a next URL is a Link target");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  if (in.ConsumeBool())
    check_encoded(in);
  else
    check_any(in);
  return 0;
}
