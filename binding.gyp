{
  "variables": {
    "build_deps_checked%": "<!(node scripts/check-build-deps.cjs)",
    "werror%": "<!(node -p \"process.env.OTR_WERROR === '1' ? '-Werror' : ''\")"
  },
  "targets": [
    {
      "target_name": "protocol_otr",
      "sources": [
        "src-native/addon.cc",
        "src-native/budget.cc",
        "src-native/channel.cc",
        "src-native/contact_view.cc",
        "src-native/contacts.cc",
        "src-native/engine.cc",
        "src-native/errors.cc",
        "src-native/file_lock.cc",
        "src-native/files.cc",
        "src-native/forget.cc",
        "src-native/guard.cc",
        "src-native/init.cc",
        "src-native/job_cost.cc",
        "src-native/keygen.cc",
        "src-native/lender_states.cc",
        "src-native/marshal.cc",
        "src-native/outbox.cc",
        "src-native/persistence.cc",
        "src-native/pool.cc",
        "src-native/rename.cc",
        "src-native/restart.cc",
        "src-native/scheduler.cc",
        "src-native/sweeps.cc",
        "src-native/trust_store.cc",
        "src-native/ui_ops.cc",
        "src-native/wire_text.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
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
