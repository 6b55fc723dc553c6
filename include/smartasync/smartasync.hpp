// smartasync/smartasync.hpp - the umbrella header: everything smartasync offers.
// Distributed under the Boost Software License, Version 1.0.
#ifndef SMARTASYNC_SMARTASYNC_HPP
#define SMARTASYNC_SMARTASYNC_HPP

#include "smartasync/config.hpp"
#include "smartasync/version.hpp"

#include "smartasync/async_stream.hpp"
#include "smartasync/block_on.hpp"
#include "smartasync/blocking_context.hpp"
#include "smartasync/blocking_pool.hpp"
#include "smartasync/context_carrier.hpp"
#include "smartasync/deadline.hpp"
#include "smartasync/deferred.hpp"
#include "smartasync/diagnostics.hpp"
#include "smartasync/error.hpp"
#include "smartasync/fan_out.hpp"
#include "smartasync/metrics.hpp"
#include "smartasync/metrics_registry.hpp"
#include "smartasync/offload.hpp"
#include "smartasync/retry.hpp"
#include "smartasync/semaphore.hpp"
#include "smartasync/serial_lane.hpp"
#include "smartasync/smart_async.hpp"
#include "smartasync/source_location.hpp"
#include "smartasync/stream.hpp"
#include "smartasync/this_thread.hpp"
#include "smartasync/timeout.hpp"
#include "smartasync/watchdog.hpp"

#endif // SMARTASYNC_SMARTASYNC_HPP
