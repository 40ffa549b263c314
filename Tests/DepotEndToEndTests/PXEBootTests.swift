import DepotCore
import Foundation
import Testing

/// A diskless host boots from a LUN: qemu-system-x86_64 under TCG with the iPXE
/// ROM; QEMU's slirp TFTP hands iPXE a script `sanboot iscsi:10.0.2.2::PORT::IQN`
/// (slirp maps 10.0.2.2 to the host's loopback); the volume's first sector is a
/// tiny real-mode program that writes a marker to the serial port.
@Suite(.serialized) struct PXEBootTests {
    static let marker = "DEPOT-BOOT-OK"

    /// The boot sector, assembled by hand (org 7C00h):
    ///   mov dx,3F8h / mov si,msg / next: lodsb / test al,al / jz done /
    ///   out dx,al / jmp next / done: cli / hlt / jmp $-1 / msg: db "DEPOT-BOOT-OK",13,10,0
    static var bootSector: [UInt8] {
        let code: [UInt8] = [
            0xBA, 0xF8, 0x03, 0xBE, 0x12, 0x7C, 0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8, 0xFA, 0xF4, 0xEB, 0xFD,
        ]
        var sector = code + Array((marker + "\r\n").utf8) + [0]
        sector += [UInt8](repeating: 0, count: 510 - sector.count)
        return sector + [0x55, 0xAA]
    }

    @Test func ipxeSanbootsFromALUN() async throws {
        let qemu = try NFSGaneshaTests.tool("qemu-system-x86_64")
        #expect(
            FileManager.default.fileExists(atPath: "/usr/lib/ipxe/qemu/pxe-e1000.rom"),
            "ipxe-qemu provides the e1000 iPXE ROM")
        let daemon = Daemon(data: try Daemon.makeDataDirectory())
        defer { daemon.cleanup() }
        try await daemon.start()
        let iqn = "iqn.2026-11.dev.depot:pxe"
        #expect(try daemon.depot(["volume", "create", "default/boot", "--size", "8M"]).status == 0)
        let handle = try #require(FileHandle(forWritingAtPath: daemon.data + "/pools/default/boot.img"))
        try handle.write(contentsOf: Data(Self.bootSector))
        try handle.close()
        #expect(try daemon.depot(["target", "create", iqn, "--allow-any"]).status == 0)
        #expect(try daemon.depot(["target", "lun", "map", iqn, "default/boot"]).status == 0)

        let work = (daemon.data as NSString).deletingLastPathComponent
        let tftp = work + "/tftp"
        try FileManager.default.createDirectory(atPath: tftp, withIntermediateDirectories: true)
        let port = daemon.portal.split(separator: ":").last.map(String.init) ?? "3260"
        try "#!ipxe\ndhcp\nsanboot iscsi:10.0.2.2::\(port)::\(iqn)\n".write(
            toFile: tftp + "/boot.ipxe", atomically: true, encoding: .utf8)
        let serial = work + "/serial.txt"
        let vm = Process()
        vm.executableURL = URL(fileURLWithPath: qemu)
        vm.arguments = [
            "-machine", "accel=tcg", "-m", "128", "-display", "none", "-monitor", "none", "-serial", "file:\(serial)",
            "-netdev", "user,id=n0,tftp=\(tftp),bootfile=boot.ipxe", "-device", "e1000,netdev=n0", "-boot", "n",
        ]
        vm.standardOutput = FileHandle.nullDevice
        vm.standardError = FileHandle.nullDevice
        try vm.run()
        defer {
            kill(vm.processIdentifier, SIGKILL)
            vm.waitUntilExit()
        }
        var booted = false
        let deadline = ContinuousClock.now + .seconds(240)
        while ContinuousClock.now < deadline, vm.isRunning {
            if let text = try? String(contentsOfFile: serial, encoding: .utf8), text.contains(Self.marker) {
                booted = true
                break
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(
            booted, "no boot marker on the serial port: \((try? String(contentsOfFile: serial, encoding: .utf8)) ?? "")"
        )
        // iPXE keeps its SAN session for INT 13h: it is listed.
        let sessions = try await daemon.client.sessions()
        #expect(sessions.contains { $0.target == iqn && $0.initiator.hasPrefix("iqn.2010-04.org.ipxe") }, "\(sessions)")
    }
}
