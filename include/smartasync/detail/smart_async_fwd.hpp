// smartasync/detail/smart_async_fwd.hpp - the wrapper's declaration, for headers that name it.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_DETAIL_SMART_ASYNC_FWD_HPP
#define SMARTASYNC_DETAIL_SMART_ASYNC_FWD_HPP

#include "smartasync/config.hpp"

namespace SMARTASYNC_NAMESPACE {

class blocking_pool;

// Defined in smart_async.hpp. Declared once here, with its default argument, so that a header
// can recognise a wrapper without including that one (a default may be given only once).
template <typename F, typename Executor = blocking_pool>
class smart_async_function;

} // namespace smartasync

#endif // SMARTASYNC_DETAIL_SMART_ASYNC_FWD_HPP
