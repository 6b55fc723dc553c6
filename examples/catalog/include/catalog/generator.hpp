// catalog/generator.hpp - a deterministic synthetic catalogue, for tests and machines without apt.
// Distributed under the Boost Software License, Version 1.0.
#ifndef CATALOG_GENERATOR_HPP
#define CATALOG_GENERATOR_HPP

#include "catalog/record.hpp"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace catalog {

/// Record number `index` of the synthetic catalogue `seed`.
/**
 * Same (index, seed), same record, on every platform and standard library (the generator is
 * its own splitmix64, not <random>'s distributions). Names are unique per seed
 * ("<word>-<word>-<index>"), descriptions are a few sentences drawn from a vocabulary of
 * software words, so full-text queries like "network", "lib*" or "audio OR video" match
 * realistic fractions of the catalogue.
 */
catalog_record generate_record(std::uint64_t index, std::uint64_t seed = 0);

/// Records 0 .. count-1 of the synthetic catalogue `seed`.
std::vector<catalog_record> generate_catalog(std::size_t count, std::uint64_t seed = 0);

} // namespace catalog

#endif // CATALOG_GENERATOR_HPP
