// fuzz/snippet_json.fuzz.cpp - the catalogue's encoders and record decoder on arbitrary bytes.
// Distributed under the Boost Software License, Version 1.0.
//
// Properties, not only "no crash":
//  * encode_snippet is reversible for any bytes: undoing its escapes gives back the raw text,
//    each highlight marker where the store put one, and no `[` or `]` of the data is a marker;
//  * a search hit with arbitrary bytes in every field, encoded as the servers encode JSON
//    (invalid UTF-8 replaced), is valid JSON that parses back, fields intact where they were
//    valid UTF-8, and it fits one SSE event (no raw line break);
//  * a page body decoded into records (from_json) either fails with invalid_record or gives
//    exactly one record per item, and those records encoded again decode to the same records.
#define FUZZ_TARGET_NAME "snippet_json"
#include "property.hpp"

#include "catalog/errors.hpp"
#include "catalog/json.hpp"
#include "catalog/record.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace {

using nlohmann::json;

// The inverse of encode_snippet, as a client reading search_hit::snippet would write it.
std::string decode_snippet(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\') {
      FUZZ_CHECK(i + 1 < s.size(), "an encoded snippet never ends in a lone escape");
      FUZZ_CHECK(s[i + 1] == '[' || s[i + 1] == ']' || s[i + 1] == '\\',
                 "an encoded snippet escapes only [ ] and \\");
      out += s[++i];
    } else if (s[i] == '[') {
      out += catalog::raw_highlight_begin;
    } else if (s[i] == ']') {
      out += catalog::raw_highlight_end;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool valid_utf8(const std::string& s) {
  try {
    (void)json(s).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

// How the example servers write JSON (search_server.cpp): invalid UTF-8 is replaced, not thrown.
std::string server_dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void check_hit(FuzzedDataProvider& in) {
  catalog::search_hit hit;
  hit.name = in.ConsumeRandomLengthString(64);
  hit.version = in.ConsumeRandomLengthString(16);
  hit.section = in.ConsumeRandomLengthString(16);
  const std::string raw = in.ConsumeRandomLengthString(256);
  hit.snippet = catalog::encode_snippet(raw);
  hit.score = in.ConsumeFloatingPoint<double>();
  FUZZ_CHECK(decode_snippet(hit.snippet) == raw, "encode_snippet is reversible");

  const std::string text = server_dump(json(hit));
  FUZZ_CHECK(text.find('\n') == std::string::npos && text.find('\r') == std::string::npos,
             "an encoded hit fits one SSE data line");
  json back;
  try {
    back = json::parse(text);
  } catch (const json::exception&) {
    ::fuzz::property_violated(FUZZ_TARGET_NAME, "an encoded hit is valid JSON");
  }
  FUZZ_CHECK(back.is_object() && back.size() == 5, "an encoded hit has its five fields");
  if (valid_utf8(hit.name))
    FUZZ_CHECK(back["name"] == hit.name, "a valid UTF-8 name survives encoding");
  if (valid_utf8(hit.snippet))
    FUZZ_CHECK(back["snippet"] == hit.snippet, "a valid UTF-8 snippet survives encoding");
}

void check_page(const std::string& body) {
  json page;
  try {
    page = json::parse(body);
  } catch (const json::exception&) {
    return; // not JSON: the fetcher reports it as malformed and retries
  }
  const json* items = &page;
  if (page.is_object() && page.contains("items"))
    items = &page["items"];
  if (!items->is_array())
    return;
  std::vector<catalog::catalog_record> records;
  try {
    for (const auto& item : *items)
      records.push_back(item.get<catalog::catalog_record>());
  } catch (const catalog::invalid_record&) {
    return; // named as a malformed record, not retried
  } catch (const json::exception&) {
    return;
  }
  FUZZ_CHECK(records.size() == items->size(), "a decoded page has one record per item");
  const json again = json::parse(server_dump(json(records)));
  FUZZ_CHECK(again.size() == records.size(), "re-encoded records keep their count");
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto r = again[i].get<catalog::catalog_record>();
    FUZZ_CHECK(r.name == records[i].name && r.version == records[i].version &&
                   r.section == records[i].section && r.maintainer == records[i].maintainer &&
                   r.description == records[i].description,
               "a record encoded and decoded again is the same record");
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  if (in.ConsumeBool())
    check_hit(in);
  else
    check_page(in.ConsumeRemainingBytesAsString());
  return 0;
}
