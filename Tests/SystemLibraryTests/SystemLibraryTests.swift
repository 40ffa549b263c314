import CLibAIO
import CLibISCSI
import Testing

/// The system-library modules compile, link and call into the real libraries
/// (the iSCSI issue builds its initiator tests and I/O engine on them).
@Suite struct SystemLibraryTests {
    @Test func libiscsiContextRoundTrip() throws {
        let context = try #require(iscsi_create_context("iqn.2026-11.dev.depot:unit-test"))
        defer { iscsi_destroy_context(context) }
        #expect(iscsi_set_targetname(context, "iqn.2026-11.dev.depot:target") == 0)
        #expect(iscsi_set_session_type(context, ISCSI_SESSION_NORMAL) == 0)
        // Nothing listens on port 1: connecting fails with an error, not a crash.
        #expect(iscsi_connect_sync(context, "127.0.0.1:1") != 0)
        #expect(iscsi_get_error(context) != nil)
    }

    @Test func libaioContextSetup() {
        var ctx: io_context_t? = nil
        #expect(io_setup(8, &ctx) == 0)
        #expect(ctx != nil)
        #expect(io_destroy(ctx) == 0)
    }
}
