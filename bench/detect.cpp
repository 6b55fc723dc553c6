// bench/detect.cpp - the cost of loop detection and of the sync form, beside a direct call.
// Distributed under the Boost Software License, Version 1.0.
//
// 1. this_thread::is_running_event_loop(): off a loop (plain thread) and on a loop (inside
//    io_context::run), each beside an empty loop with the same barrier.
// 2. The sync form w(x) off a loop, beside calling the same non-inlined function directly:
//    a trivial function (the wrapper's whole cost shows) and a small real one (~70 ns), the
//    latter twice: independent calls (the CPU may overlap one call's tail with the next call)
//    and chained calls (each argument is the previous result, so nothing overlaps and the
//    difference is the wrapper's added latency per call).
#include "drivers.hpp"
#include "harness.hpp"

#include <smartasync/smart_async.hpp>
#include <smartasync/this_thread.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

namespace {

using bench::trivial;

void empty_loop(std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    bench::keep(i);
}

void detect_loop(std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const bool on_loop = smartasync::this_thread::is_running_event_loop();
    bench::keep(on_loop);
  }
}

// Runs `body` inside io_context::run, so the detection sees a loop.
template <typename F>
void on_loop(F&& body) {
  asio::io_context ctx;
  asio::post(ctx, [&] { body(); });
  ctx.run();
}

// About 70 ns of arithmetic (on the machine of docs/benchmarks.md) that the optimiser cannot
// fold: a small but real function.
[[gnu::noinline]] int small_work(int x) noexcept {
  unsigned h = unsigned(x);
  for (int i = 0; i < 64; ++i) {
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    bench::keep(h);
  }
  return int(h);
}

} // namespace

int main(int argc, char** argv) {
  auto opts = bench::options::parse(argc, argv);
  bench::results out(opts);
  fmt::print("# smartasync loop detection and sync form ({} rounds, medians)\n", opts.rounds);

  {
    std::vector<bench::contender> cs{
        {"is_running_event_loop off-loop", detect_loop, 0, {}},
        {"empty loop (barrier only)", empty_loop, 0, {}},
    };
    bench::alternate(cs, opts);
    bench::report("detection, off-loop", cs, out, false);
  }
  {
    std::vector<bench::contender> cs{
        {"is_running_event_loop on-loop", [](std::size_t n) { on_loop([n] { detect_loop(n); }); },
         0, {}},
        {"empty loop (barrier only)", [](std::size_t n) { on_loop([n] { empty_loop(n); }); }, 0, {}},
    };
    bench::alternate(cs, opts);
    bench::report("detection, on-loop", cs, out, false);
  }
  {
    smartasync::blocking_pool pool{1};
    auto w = smartasync::smart_async(pool, [](int x) { return trivial(x); });
    std::vector<bench::contender> cs{
        {"w(x) sync form off-loop",
         [&w](std::size_t n) {
           for (std::size_t i = 0; i < n; ++i) {
             const int r = w(int(i));
             bench::keep(r);
           }
         },
         0, {}},
        {"trivial(x) direct call",
         [](std::size_t n) {
           for (std::size_t i = 0; i < n; ++i) {
             const int r = trivial(int(i));
             bench::keep(r);
           }
         },
         0, {}},
    };
    bench::alternate(cs, opts);
    bench::report("sync form vs direct call, off-loop", cs, out, false);
  }
  {
    smartasync::blocking_pool pool{1};
    auto w = smartasync::smart_async(pool, [](int x) { return small_work(x); });
    std::vector<bench::contender> cs{
        {"w(x) sync form off-loop",
         [&w](std::size_t n) {
           for (std::size_t i = 0; i < n; ++i) {
             const int r = w(int(i));
             bench::keep(r);
           }
         },
         0, {}},
        {"small_work(x) direct call",
         [](std::size_t n) {
           for (std::size_t i = 0; i < n; ++i) {
             const int r = small_work(int(i));
             bench::keep(r);
           }
         },
         0, {}},
    };
    bench::alternate(cs, opts);
    bench::report("sync form vs direct call, small function (~70 ns), off-loop", cs, out, false);

    cs = {
        {"w(x) sync form off-loop, chained",
         [&w](std::size_t n) {
           int x = 1;
           for (std::size_t i = 0; i < n; ++i)
             x = w(x);
           bench::keep(x);
         },
         0, {}},
        {"small_work(x) direct call, chained",
         [](std::size_t n) {
           int x = 1;
           for (std::size_t i = 0; i < n; ++i)
             x = small_work(x);
           bench::keep(x);
         },
         0, {}},
    };
    bench::alternate(cs, opts);
    bench::report("sync form vs direct call, small function (~70 ns) chained, off-loop", cs, out,
                  false);
  }
}
