// A few cycles of herald-crashloop (bench/herald_crashloop.cc, docs/crash-testing.md): heraldd
// killed -9 at random moments of a push load and restarted, the devices drained, and the
// DeliveryChecker's verdict, as the tool's users run it.
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "captured_run.h"
#include "herald_server.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

TEST(CrashLoop, FewCyclesOfKillNineLoseAndDuplicateNothing) {
  // Beside bin/ in the build: bench/herald-crashloop (built with the benchmarks).
  const auto tool = bin_path("heraldd").parent_path().parent_path() / "bench" / "herald-crashloop";
  if (!std::filesystem::exists(tool)) GTEST_SKIP() << "no " << tool << " (benchmarks not built)";
  const CapturedRun run =
      run_captured({tool.string(), "--cycles=4", "--devices=3", "--senders=2", "--rate=100",
                    "--seed=7", "--min-up-ms=150", "--max-up-ms=600", "--drain-s=30", "--json"},
                   {"HERALD_BIN_DIR=" + bin_path("heraldd").parent_path().string()}, 120s);
  ASSERT_FALSE(run.timed_out) << run.err;
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  // The figures are the last line: heraldd, started by the tool, prints its banner before.
  std::string last = run.out.substr(0, run.out.find_last_not_of('\n') + 1);
  last = last.substr(last.find_last_of('\n') + 1);
  boost::system::error_code ec;
  const auto figures = boost::json::parse(last, ec);
  ASSERT_FALSE(ec) << run.out;
  const auto& f = figures.as_object();
  EXPECT_EQ(f.at("seed").to_number<std::int64_t>(), 7);
  EXPECT_EQ(f.at("cycles").to_number<std::int64_t>(), 4);
  EXPECT_GT(f.at("acknowledged").to_number<std::int64_t>(), 0);
  EXPECT_GE(f.at("deliveries").to_number<std::int64_t>(), f.at("owed").to_number<std::int64_t>());
  for (const char* violation :
       {"lost", "unexpected", "duplicated", "seq_reused", "out_of_order", "unannounced_gaps"}) {
    EXPECT_EQ(f.at(violation).to_number<std::int64_t>(), 0) << violation << "\n" << run.err;
  }
  EXPECT_EQ(f.at("drained"), true);
  // Every device came back at least after the last kill (a kill may come before one is back).
  EXPECT_GE(f.at("device_reconnects").to_number<std::int64_t>(), 3);
}

}  // namespace
}  // namespace herald::testing
