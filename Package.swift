// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Depot",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "depotd", targets: ["depotd"]),
        .executable(name: "depot", targets: ["depot"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // Shared value types: sizes, names, errors. No I/O.
        .target(name: "DepotCore"),
        // SQLite catalog through GRDB.
        .target(
            name: "DepotCatalog",
            dependencies: ["DepotCore", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // Linux file calls Swift's Glibc module hides (fallocate, SEEK_DATA).
        .target(name: "CDepotPosix"),
        // Pools, volume files, provisioning, capacity, reconcile.
        .target(
            name: "DepotStorage",
            dependencies: [
                "DepotCore", "DepotCatalog", "DepotImage", "DepotBackstores", "DepotBlock", "DepotJobs", "CDepotPosix",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Long work as jobs: state in the catalog, progress, cancel, throttle, resume.
        .target(
            name: "DepotJobs",
            dependencies: [
                "DepotCore", "DepotCatalog",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The BlockDevice protocol: what the SCSI core and the backstores share.
        .target(name: "DepotBlock", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        // Image formats (qcow2): headers and tables parsed from and written to
        // byte buffers, no I/O.
        .target(name: "DepotImage", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        // Backstores: the raw volume file, qcow2 chains (later mirrors, RBD).
        .target(
            name: "DepotBackstores",
            dependencies: [
                "DepotBlock", "DepotCore", "DepotImage", "CDepotPosix", "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // SCSI command emulation (SPC-4/SBC-3) over the BlockDevice protocol.
        .target(
            name: "DepotSCSI",
            dependencies: [
                "DepotBlock", "CDepotPosix",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // iSCSI transport (RFC 7143): PDUs, login, sessions, target service.
        .target(
            name: "DepotISCSI",
            dependencies: [
                "DepotSCSI", "DepotCore",
                "CDepotPosix",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Control plane of iSCSI targets: catalog rows to the transport's directory.
        .target(
            name: "DepotTargets",
            dependencies: [
                "DepotCore", "DepotCatalog", "DepotStorage", "DepotISCSI", "DepotSCSI", "DepotBlock", "DepotBackstores",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // NFS exports: exports(5) and NFS-Ganesha files, publishing, reload.
        .target(
            name: "DepotExports",
            dependencies: ["DepotCore", "DepotCatalog", .product(name: "Logging", package: "swift-log")]
        ),
        // REST API (Hummingbird), auth, audit log, metrics.
        .target(
            name: "DepotAPI",
            dependencies: [
                "DepotCore", "DepotCatalog", "DepotStorage", "DepotExports", "DepotTargets",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Wiring: configuration, services, graceful shutdown.
        .target(
            name: "DepotServer",
            dependencies: [
                "DepotCore", "DepotCatalog", "DepotStorage", "DepotExports", "DepotAPI", "DepotTargets", "DepotISCSI",
                "DepotBackstores",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The `depot` command line: subcommands and the HTTP client they drive.
        .target(
            name: "DepotCLI",
            dependencies: [
                "DepotCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "depotd",
            dependencies: [
                "DepotServer", "DepotCore", "CDepotPosix",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "depot",
            dependencies: ["DepotCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // A blocking PDU-level initiator for end-to-end tests and benchmarks.
        .target(
            name: "DepotInitiator",
            dependencies: ["DepotISCSI", "DepotSCSI", .product(name: "NIOCore", package: "swift-nio")]),
        // Benchmarks (`make bench-control`, `make bench-scale`); not part of `make test`.
        .executableTarget(name: "depot-bench", dependencies: ["DepotCLI", "DepotCore", "DepotInitiator"]),
        // In-process fuzz targets: `make fuzz` builds them for libFuzzer
        // (-sanitize=fuzzer,address, -DDEPOT_FUZZ); the plain build replays corpora.
        .executableTarget(
            name: "depot-fuzz",
            dependencies: ["DepotISCSI", "DepotSCSI", "DepotBackstores", "DepotBlock", "DepotCore"]),
        // C libraries enter through one system-library module each (DESIGN.md).
        .systemLibrary(
            name: "CLibISCSI", pkgConfig: "libiscsi",
            providers: [.apt(["libiscsi-dev"])]
        ),
        .systemLibrary(name: "CLibAIO", providers: [.apt(["libaio-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),

        .testTarget(name: "DepotCoreTests", dependencies: ["DepotCore"]),
        .testTarget(name: "DepotCatalogTests", dependencies: ["DepotCatalog", "DepotCore"]),
        .testTarget(
            name: "DepotISCSITests",
            dependencies: [
                "DepotISCSI", "DepotSCSI", "DepotInitiator", "CDepotPosix",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "DepotExportsTests", dependencies: ["DepotExports", "DepotCatalog", "DepotCore"]),
        .testTarget(
            name: "DepotStorageTests",
            dependencies: ["DepotStorage", "DepotCatalog", "DepotCore", "DepotBackstores", "DepotBlock"]),
        .testTarget(
            name: "DepotAPITests",
            dependencies: [
                "DepotAPI", "DepotStorage", "DepotCatalog", "DepotCore", "DepotTargets", "DepotISCSI",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(name: "SystemLibraryTests", dependencies: ["CLibISCSI", "CLibAIO"]),
        .testTarget(
            name: "DepotEndToEndTests",
            dependencies: [
                "DepotCore", "DepotCLI", "CLibISCSI", "DepotISCSI", "DepotInitiator",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "DepotBackstoresTests",
            dependencies: [
                "DepotBackstores", "DepotBlock", "DepotImage", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "DepotSCSITests",
            dependencies: [
                "DepotSCSI", "DepotBlock", "DepotBackstores", "DepotInitiator",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]),
    ]
)
