{
  "variables": {
    "build_deps_checked%": "<!(node scripts/check-build-deps.cjs)",
    "werror%": "<!(node -p \"process.env.OTR_WERROR === '1' ? '-Werror' : ''\")"
  },
  "targets": [
    {
      "target_name": "protocol_otr",
      "sources": [
        "src-native/napi/addon.cc",
        "src-native/napi/file_functions.cc",
        "src-native/napi/marshal.cc",
        "src-native/engine/contact_index.cc",
        "src-native/engine/engine.cc",
        "src-native/engine/errors.cc",
        "src-native/engine/job_cost.cc",
        "src-native/engine/lender_states.cc",
        "src-native/engine/outbox.cc",
        "src-native/engine/pool.cc",
        "src-native/engine/scheduler.cc",
        "src-native/otr/budget.cc",
        "src-native/otr/channel.cc",
        "src-native/otr/contact_view.cc",
        "src-native/otr/contacts.cc",
        "src-native/otr/forget.cc",
        "src-native/otr/guard.cc",
        "src-native/otr/init.cc",
        "src-native/otr/keygen.cc",
        "src-native/otr/persistence.cc",
        "src-native/otr/rename.cc",
        "src-native/otr/restart.cc",
        "src-native/otr/smp_gate.cc",
        "src-native/otr/ui_ops.cc",
        "src-native/otr/wire_text.cc",
        "src-native/io/file_lock.cc",
        "src-native/io/file_trust_store.cc",
        "src-native/io/files.cc",
        "src-native/io/work_dirs.cc"
      ],
      "include_dirs": ["src-native", "<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NAPI_CPP_EXCEPTIONS"
      ],
      "configurations": {
        "Release": {
          "defines": ["_FORTIFY_SOURCE=2"],
          "cflags_cc": ["-O2"]
        }
      },
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": [
        "-std=c++17",
        "-fexceptions",
        "-fvisibility=hidden",
        "-fstack-protector-strong",
        "<!@(node src-native/hardening-flags.mjs)",
        "-Wall",
        "-Wextra",
        "-Wno-missing-field-initializers",
        "<(werror)"
      ],
      "cflags!": ["-fno-exceptions"],
      "libraries": ["<!@(pkg-config --libs libotr 2>/dev/null || echo -lotr -lgcrypt)", "-lgcrypt", "-Wl,-z,relro,-z,now"]
    }
  ]
}
