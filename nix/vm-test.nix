# A NixOS machine that runs the hive-tui module for real: the engine as a
# system service driving nixos-container, with no network. It spawns an agent,
# deploys a change, fails a build and checks the agent stayed where it was,
# stops the service in the middle of a deploy, starts it again and checks what
# crash recovery promises. It needs KVM: `nix flake check` or
# `nix build .#checks.x86_64-linux.vm` on a NixOS machine runs it.
{ self, pkgs }:
let
  inherit (pkgs) lib;
  system = pkgs.stdenv.hostPlatform.system;
  hiveTui = "${self.packages.${system}.hive-tui}/bin/hive-tui";
  socket = "/run/hive-tui/host.sock";

  # The container system a spawn of the template agent builds, built here
  # ahead: the machine has no network, so what the build needs must already
  # be in its store.
  agentSystem = name: (import "${pkgs.path}/nixos/lib/eval-config.nix" {
    inherit system;
    specialArgs.agentName = name;
    modules = [
      { system.stateVersion = "25.05"; }
      { boot.isContainer = true; networking.hostName = lib.mkDefault "h-${name}"; }
    ];
  }).config.system.build.toplevel;

  # The template's config, and one whose evaluation fails: a deploy of that
  # must change nothing.
  goodConfig = pkgs.writeText "configuration.nix" ''
    { agentName, ... }: { system.stateVersion = "25.05"; }
  '';
  brokenConfig = pkgs.writeText "configuration.nix" ''
    { ... }: { system.stateVersion = "25.05"; services.nonexistent-option-on-purpose = true; }
  '';
in
pkgs.testers.runNixOSTest {
  name = "hive-tui-vm";

  nodes.host = { ... }: {
    imports = [ self.nixosModules.default ];
    boot.enableContainers = true;
    services.hive-tui.enable = true;
    environment.systemPackages = [ pkgs.git pkgs.jq ];
    nix.settings.substituters = lib.mkForce [ ];
    virtualisation = {
      memorySize = 3072;
      diskSize = 8192;
      writableStore = true;
      additionalPaths = [
        pkgs.path
        pkgs.stdenv
        pkgs.stdenvNoCC
        (agentSystem "alpha")
      ];
    };
  };

  testScript = ''
    import json

    def hive(args, check=True):
        command = f"${hiveTui} --host unix:${socket} {args}"
        return host.succeed(command) if check else host.execute(command)

    def hive_json(args):
        return json.loads(hive(f"--json {args}"))

    def commit(files, message):
        repo = "/var/lib/hive-tui/proposed/alpha"
        for path, source in files.items():
            host.succeed(f"cp {source} {repo}/{path}")
        host.succeed(
            f"git -C {repo} add -A && "
            f"git -C {repo} -c user.name=vm -c user.email=vm@test commit -m '{message}'"
        )

    def profile():
        return host.succeed("readlink /nix/var/nix/profiles/per-container/h-alpha/system").strip()

    def check_invariants():
        # What the recovery tests hold an idle hive to, seen from outside.
        approvals = hive_json("pending --all")
        assert all(a["status"] != "pending" for a in approvals), approvals
        resolved = [e["id"] for e in hive_json("events") if e["kind"] == "ApprovalResolved"]
        assert len(resolved) == len(set(resolved)), resolved
        history = hive_json("history alpha")
        for a in approvals:
            assert a["id"] in resolved, a
            if a["kind"] != "apply_commit":
                continue
            ends = [t["tag"] for t in history
                    if t["id"] == a["id"] and t["state"] in ("deployed", "failed", "denied")]
            assert ends == [a["terminal_tag"]], (a, ends)
        deployed = [t for t in history if t["state"] == "deployed"]
        main = host.succeed("git -C /var/lib/hive-tui/applied/alpha rev-parse main").strip()
        assert deployed and deployed[-1]["sha"] == main, (deployed, main)
        lock = json.loads(host.succeed("cat /var/lib/hive-tui/meta/flake.lock"))
        assert lock["nodes"]["agent-alpha"]["locked"]["rev"] == main
        assert "nixpkgs" in lock["nodes"]["root"]["inputs"], lock["nodes"]["root"]
        host.succeed("git -C /var/lib/hive-tui/meta show HEAD:flake.lock | cmp - /var/lib/hive-tui/meta/flake.lock")
        rows = hive_json("status")
        assert [r["transient"] for r in rows] == [None], rows
        assert [(r["name"], r["running"]) for r in rows] == [("alpha", True)], rows
        host.succeed("nixos-container status h-alpha | grep -x up")

    start_all()
    host.wait_for_unit("hive-tui.service")
    host.wait_for_file("${socket}")

    with subtest("spawn an agent"):
        spawn = hive_json("request-spawn alpha --description vm")
        hive(f"approve {spawn['id']}")
        host.succeed("nixos-container status h-alpha | grep -x up")
        # Its state folder is bound into the container.
        host.succeed("echo hello > /var/lib/hive-tui/agents/alpha/probe")
        host.succeed("nixos-container run h-alpha -- cat /var/lib/hive-agent/probe | grep -x hello")

    with subtest("deploy a change"):
        commit({"notes.txt": "${pkgs.writeText "notes.txt" "first\n"}"}, "notes")
        deploy = hive_json("propose alpha main")
        assert hive_json(f"approve {deploy['id']}")["status"] == "approved"
        good = profile()

    with subtest("a failed build leaves the agent where it was"):
        commit({"configuration.nix": "${brokenConfig}"}, "broken")
        broken = hive_json("propose alpha main")
        status, out = hive(f"--json approve {broken['id']}", check=False)
        assert status == 1 and json.loads(out)["terminal_tag"] == f"failed/{broken['id']}", out
        assert profile() == good
        check_invariants()
        commit({"configuration.nix": "${goodConfig}"}, "mended")

    with subtest("stopping the service lets the deploy in flight finish"):
        commit({"notes.txt": "${pkgs.writeText "notes.txt" "second\n"}"}, "more notes")
        last = hive_json("propose alpha main")
        host.succeed(f"systemd-run --unit=approve-last ${hiveTui} --host unix:${socket} approve {last['id']}")
        # The brackets keep pgrep from finding the shell that runs it.
        host.wait_until_succeeds("pgrep -f '[n]ixos-container update h-alpha'")
        # KillMode=mixed: SIGTERM reaches the engine alone, which waits for
        # the deploy; the update is not killed under it.
        host.succeed("systemctl stop hive-tui.service")
        host.fail("pgrep -f '[n]ixos-container update h-alpha'")

    with subtest("after a restart the hive is whole"):
        host.succeed("systemctl start hive-tui.service")
        host.wait_for_unit("hive-tui.service")
        host.wait_until_succeeds("${hiveTui} --host unix:${socket} status")
        ends = [t["state"] for t in hive_json("history alpha") if t["id"] == last["id"]]
        assert ends[-1] == "deployed", ends
        check_invariants()
  '';
}
