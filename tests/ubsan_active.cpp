// Undefined behaviour on purpose: the TSan build also carries UBSan (CMakePresets.json), and this
// program proves it does. Run there (tests/CMakeLists.txt), it must be stopped at the overflow
// with UBSan's report, and never print the line after it.
#include <climits>
#include <cstdio>

int main(int argc, char**) {
  int value = INT_MAX - 1 + argc; // INT_MAX, from a value the compiler cannot fold
  value += argc;                  // signed overflow
  std::printf("continued after the overflow: %d\n", value);
  return 0;
}
