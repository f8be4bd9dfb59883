"""PyTorch CPU peer of tilevec's RevBiFPN, for benchmarks only (never a runtime dependency).

Mirrors src/model layer for layer: parameter-free stem (repeat bands, space-to-depth x4), reversible blocks
on channel halves, RevSilo fusion with MBConv down/up maps, MBConv neck with top-down merge, 1x1 projection and
global average pooling. Trained conventionally (plain autograd), as PyTorch users would.

  python3 bench/torch_revbifpn.py train '{"config": {...}, "batch": 8, "steps": 10, "threads": 2}'
  python3 bench/torch_revbifpn.py embed '{"config": {...}, "batch": 64, "tiles": 512, "threads": 2}'

Prints one JSON line with the throughput.
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBN(nn.Module):
    def __init__(self, cin, cout, k=1, stride=1, groups=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.1)
        self.act = nn.Hardswish() if act else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class SqueezeExcite(nn.Module):
    def __init__(self, channels, squeeze):
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.expand = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.expand(F.hardswish(self.reduce(s))))


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, stride, expand_ratio, se_ratio):
        super().__init__()
        hidden = int(cin * expand_ratio)
        layers = []
        if expand_ratio != 1:
            layers.append(ConvBN(cin, hidden))
        layers.append(ConvBN(hidden, hidden, k, stride, groups=hidden))
        if se_ratio > 0:
            layers.append(SqueezeExcite(hidden, max(1, int(cin * se_ratio))))
        layers.append(ConvBN(hidden, cout, act=False))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


class RevBlock(nn.Module):
    def __init__(self, stream, channels, k, expand_ratio, se_ratio):
        super().__init__()
        self.stream = stream
        half = channels // 2
        self.f = MBConv(half, half, k, 1, expand_ratio, se_ratio)
        self.g = MBConv(half, half, k, 1, expand_ratio, se_ratio)

    def forward(self, xs):
        a, b = xs[self.stream].chunk(2, dim=1)
        b = b + self.f(a)
        a = a + self.g(b)
        xs = list(xs)
        xs[self.stream] = torch.cat([a, b], 1)
        return xs


class Up(nn.Module):
    def __init__(self, cin, cout, k, expand_ratio, se_ratio, factor):
        super().__init__()
        self.mb = MBConv(cin, cout, k, 1, expand_ratio, se_ratio)
        self.factor = factor

    def forward(self, x):
        return F.interpolate(self.mb(x), scale_factor=self.factor, mode='bilinear', align_corners=False)


class RevSilo(nn.Module):
    def __init__(self, in_streams, adds, c):
        super().__init__()
        self.in_streams = in_streams
        self.out_streams = in_streams + (1 if adds else 0)
        w, er, se, ke = c['widthsAdapted'], c['expandRatios'], c['seRatios'], c['kernelExtra']
        self.down = nn.ModuleList()
        for j in range(self.out_streams):
            row = nn.ModuleList()
            for i in range(j):
                s = 2 ** (j - i)
                row.append(MBConv(w[i], w[j], 2 * s - 1 + ke[i], s, er[i], se[i]))
            self.down.append(row)
        self.up = nn.ModuleList()
        for i in range(self.out_streams):
            row = nn.ModuleList()
            for j in range(i + 1, self.out_streams):
                row.append(Up(w[j], w[i], 3 + ke[j], er[i], se[i], 2 ** (j - i)))
            self.up.append(row)

    def forward(self, xs):
        zs = []
        for j in range(self.out_streams):
            terms = [d(xs[i]) for i, d in enumerate(self.down[j])]
            if j < self.in_streams:
                terms = [xs[j]] + terms
            zs.append(sum(terms))
        ys = [None] * self.out_streams
        for i in reversed(range(self.out_streams)):
            ys[i] = sum([zs[i]] + [u(zs[i + 1 + k]) for k, u in enumerate(self.up[i])])
        return ys


class RevBiFPN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.repeated = max(c['widths'][0] // 16, c['bands'])
        c['widthsAdapted'] = [self.repeated * 16] + c['widths'][1:]
        w = c['widthsAdapted']
        units = []
        for layer in range(3 + c['extraLayers']):
            streams = min(layer + 1, 4)
            for _ in range(c['blocksPerLayer']):
                for h in range(streams):
                    units.append(RevBlock(h, w[h], c['blockKernels'][h], c['expandRatios'][h], c['seRatios'][h]))
            units.append(RevSilo(streams, streams < 4, c))
        self.units = nn.ModuleList(units)
        nw = c['neckWidths']
        self.neck = nn.ModuleList(MBConv(w[h], nw[h], c['neckKernel'], 1, c['neckExpandRatios'][h], c['neckSeRatios'][h]) for h in range(4))
        self.merge = nn.ModuleList(MBConv(nw[h], nw[h + 1], c['neckKernel'], 2, c['neckExpandRatios'][h], c['neckSeRatios'][h]) for h in range(3))
        self.project = nn.Conv2d(nw[3], c['dim'], 1)

    def forward(self, x):
        copies = -(-self.repeated // x.shape[1])
        x = x.repeat(1, copies, 1, 1)[:, : self.repeated]
        xs = [F.pixel_unshuffle(x, 4)]
        for unit in self.units:
            xs = unit(xs)
        feats = [n(s) for n, s in zip(self.neck, xs)]
        out = feats[0]
        for h, m in enumerate(self.merge):
            out = feats[h + 1] + m(out)
        return self.project(out).mean(dim=(2, 3))


def triplet_loss(z, margin, l2):
    za, zn, zd = z.chunk(3)
    dn = torch.sqrt(((za - zn) ** 2).sum(1) + 1e-12)
    dd = torch.sqrt(((za - zd) ** 2).sum(1) + 1e-12)
    loss = F.relu(dn - dd + margin).mean()
    return loss + l2 * (za.norm() + zn.norm() + zd.norm())


def main():
    mode, args = sys.argv[1], json.loads(sys.argv[2])
    torch.set_num_threads(args.get('threads', 2))
    torch.manual_seed(0)
    c = args['config']
    model = RevBiFPN(c)
    tile, bands, batch = c['tileSize'], c['bands'], args['batch']
    if mode == 'train':
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
        model.train()
        x = torch.randn(3 * batch, bands, tile, tile)

        def step():
            opt.zero_grad()
            loss = triplet_loss(model(x), 10.0, 0.01)
            loss.backward()
            opt.step()

        for _ in range(args.get('warmup', 2)):
            step()
        t0 = time.perf_counter()
        c0 = time.process_time()  # this process's CPU time, all its threads
        for _ in range(args['steps']):
            step()
        cpu = time.process_time() - c0
        seconds = time.perf_counter() - t0
        print(json.dumps({'engine': 'pytorch', 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'tripletsPerSecond': batch * args['steps'] / seconds, 'secondsPerStep': seconds / args['steps'], 'cpuSecondsPerStep': cpu / args['steps']}))
    else:
        model.eval()
        x = torch.randn(batch, bands, tile, tile)
        with torch.no_grad():
            for _ in range(args.get('warmup', 2)):
                model(x)
            n = 0
            t0 = time.perf_counter()
            while n < args['tiles']:
                model(x)
                n += batch
            seconds = time.perf_counter() - t0
        print(json.dumps({'engine': 'pytorch', 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'tilesPerSecond': n / seconds}))


if __name__ == '__main__':
    main()
