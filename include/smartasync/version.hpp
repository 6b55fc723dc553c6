// smartasync/version.hpp - the library version, single source (CMake parses it).
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_VERSION_HPP
#define SMARTASYNC_VERSION_HPP

// SMARTASYNC_VERSION % 100 is the patch, / 100 % 1000 the minor, / 100000 the major.
#define SMARTASYNC_VERSION 100001 // 1.0.1

#define SMARTASYNC_VERSION_MAJOR (SMARTASYNC_VERSION / 100000)
#define SMARTASYNC_VERSION_MINOR (SMARTASYNC_VERSION / 100 % 1000)
#define SMARTASYNC_VERSION_PATCH (SMARTASYNC_VERSION % 100)

#endif // SMARTASYNC_VERSION_HPP
