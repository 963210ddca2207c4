// rdmaq native addon: the module's exports, in one list. One C++ class per JS class (see src/native.ts and
// src/fabric/native.ts for the JS side):
//
//   Sender / Receiver                        sender_napi.h / receiver_napi.h: shm link ends over ring.h
//   FabricSenderNative / FabricReceiverNative fabric_sender_napi.h / fabric_receiver_napi.h: fabric_engine.h
//   StatsMap and stats*                      stats_napi.h: the statistics file (stats_file.h)
//   helpers                                  tools_napi.h, fabric_napi.h
//   test and benchmark support               test_support.cc, bench.cc (their own translation units)
//
// Threads: none of our own. Every method runs on the Node main thread; sleeping is uv_poll on its loop.
#include <napi.h>

#include "bench.h"
#include "fabric_napi.h"
#include "fabric_receiver_napi.h"
#include "fabric_sender_napi.h"
#include "receiver_napi.h"
#include "sender_napi.h"
#include "stats_napi.h"
#include "test_support.h"
#include "tools_napi.h"

namespace rdmaq {
namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto fn = [&](const char* name, Napi::Function::Callback cb) {
    exports.Set(name, Napi::Function::New(env, cb, name));
  };
  fn("statsSetAppName", StatsSetAppName);
  fn("statsInfo", StatsInfo);
  fn("statsHeartbeat", StatsHeartbeat);
  fn("statsSetFlags", StatsSetFlags);
  exports.Set("StatsMap", StatsMap::Define(env));
  fn("providers", Providers);
  fn("fabricVersion", FabricVersion);
  exports.Set("Sender", NativeSender::Define(env));
  exports.Set("Receiver", NativeReceiver::Define(env));
  fn("bucketOf", BucketOf);
  fn("nowNs", NowNs);
  fn("checksum", Checksum);
  fn("checksum32", Checksum32);
  fn("testSeal", test_support::TestSeal);
  fn("testCheck", test_support::TestCheck);
  fn("memcpyBandwidth", bench::MemcpyBandwidth);
  fn("sweepStale", SweepStale);
  fn("resend", Resend);
  fn("inspectRing", InspectRing);
  fn("engineLatPing", bench::EngineLatPing);
  fn("engineLatPong", bench::EngineLatPong);
  fn("engineBwSend", bench::EngineBwSend);
  fn("engineBwRecv", bench::EngineBwRecv);
  exports.Set("FabricSenderNative", fabric::FabricSenderNative::Define(env));
  exports.Set("FabricReceiverNative", fabric::FabricReceiverNative::Define(env));
  fn("fabricAddressIp", fabric::FabricAddressIp);
  fn("fabricProbe", fabric::FabricProbe);
  fn("fabricEngineLatPing", fabric::bench::FabricEngineLatPing);
  fn("fabricEngineLatPong", fabric::bench::FabricEngineLatPong);
  fn("fabricEngineBwSend", fabric::bench::FabricEngineBwSend);
  fn("fabricEngineBwRecv", fabric::bench::FabricEngineBwRecv);
  return exports;
}

}  // namespace
}  // namespace rdmaq

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return rdmaq::Init(env, exports); }
NODE_API_MODULE(rdmaq, InitModule)
