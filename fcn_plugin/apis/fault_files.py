"""The file cases of :func:`~fcn_plugin.apis.fault_suite.fault_injection` (kinds ``workdirs``,
``reports``, ``inputs``): runs that would mix in one work dir, broken pointers and custom
checkpoint names at ``--resume``, logs and reports that cannot be written (a full disk or a
read-only work dir, injected by :mod:`.fault_shim`), phone photos with an EXIF orientation tag,
split files listing an image twice or nothing, misspelt metric arguments, and ``tools/infer.py``
outputs that would overwrite inputs or each other. Each returns its table rows."""
import concurrent.futures
import filecmp
import os
import os.path as osp
import re
import shutil
import signal
import threading

import numpy as np
from PIL import Image

from ..runtime.runs import run_of
from .fault_runs import checkpoints, data_options, judge, resumed_at, wanted
from .faults import Tail, wait_until

SHIM = osp.join(osp.dirname(osp.abspath(__file__)), 'fault_shim')
QUICK = [
    'two runs in one work dir', 'binary last_checkpoint', 'EXIF 6, label on stored pixels',
    "iou_metrics=['mDice']", 'infer.py --out = the input folder'
]


def row(fault, tool, r, expected, ok, last):
    """A table row for run ``r``."""
    return dict(
        fault=fault,
        tool=tool,
        expected=expected,
        ok=bool(ok),
        rc=r['rc'],
        seconds=r['seconds'],
        peak_mib=r['peak_mib'],
        last=last if ok else 'unexpected: ' + last)


def files_of(folder, checkpoints_only=False):
    """{relative path: (size, mtime)} of the files under ``folder`` (hidden ones too; only
    ``*.pth`` and ``last_checkpoint`` with ``checkpoints_only``)."""
    found = {}
    for d, _, names in os.walk(folder):
        for n in names:
            if not checkpoints_only or n.endswith('.pth') or n == 'last_checkpoint':
                stat = os.stat(osp.join(d, n))
                found[osp.relpath(osp.join(d, n), folder)] = (stat.st_size, stat.st_mtime_ns)
    return found


# ------------------------------------------------------------------------------- work dirs
def workdir_cases(ctx, only):
    rows = []
    if wanted(only, 'workdirs', 'two runs in one work dir'):
        rows += two_runs(ctx)
    old = osp.join(ctx.dir, 'old_run')
    if wanted(only, 'workdirs', "a new run beside an earlier run's iter_100"):
        os.makedirs(old)
        shutil.copy(ctx.reference, osp.join(old, 'iter_100.pth'))
        before = files_of(old, True)
        r = ctx.run(ctx.train_cmd(old, ctx.data, iters=8), old + '_new')
        kept = files_of(old, True) == before
        row_ = judge("a new run beside an earlier run's iter_100", 'train.py', r,
                     'earlier run|another run|iter_100')
        row_['ok'] &= kept
        rows.append(row_ if kept else dict(row_, last='FILES CHANGED: ' + row_['last']))
    if wanted(only, 'workdirs', "--resume among this run's and an earlier run's checkpoints"):
        work = osp.join(ctx.dir, 'mixed')
        ctx.run(ctx.train_cmd(work, ctx.data, iters=8), work + '_0')
        shutil.copy(ctx.reference, osp.join(work, 'iter_100.pth'))
        before = files_of(work, True)
        r = ctx.run(ctx.train_cmd(work, ctx.data, iters=12, resume=True), work + '_1')
        row_ = judge("--resume among this run's and an earlier run's checkpoints", 'train.py', r,
                     'runs|another run|earlier run')
        kept = files_of(work, True) == before
        row_['ok'] &= kept
        rows.append(row_ if kept else dict(row_, last='FILES CHANGED: ' + row_['last']))
    if wanted(only, 'workdirs', '--resume, custom filename_tmpl and out_dir'):
        rows.append(custom_names(ctx))
    if wanted(only, 'workdirs', 'binary last_checkpoint'):
        work = osp.join(ctx.dir, 'binary_pointer')
        ctx.run(ctx.train_cmd(work, ctx.data, iters=8), work + '_0')
        with open(osp.join(work, 'last_checkpoint'), 'wb') as f:
            f.write(bytes(range(128, 256)))
        r = ctx.run(ctx.train_cmd(work, ctx.data, iters=12, resume=True), work + '_1')
        ok = r['rc'] == 0 and resumed_at(r['out']) == 8 and 12 in checkpoints(work)
        rows.append(
            row('binary last_checkpoint', 'train.py --resume', r, 'warn, resume iter_8', ok,
                f'resumed at {resumed_at(r["out"])}, exit {r["rc"]}' if ok else r['last']))
    return rows


def two_runs(ctx):
    """Start a long run, and once it trains a second one in the same work dir: the second must
    be refused without writing a checkpoint; the first, still training, is then stopped with
    SIGTERM (exit 143 if it ran until then)."""
    work, done = osp.join(ctx.dir, 'two_runs'), threading.Event()
    first_log = work + '_first'
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(
            ctx.run,
            ctx.train_cmd(work, ctx.data, 'default_hooks.checkpoint.interval=20', iters=100000),
            first_log,
            signals=[(lambda tail: done.is_set(), signal.SIGTERM, False)])
        started = wait_until(
            lambda: osp.exists(first_log + '.out') and 'Iter(train)' in Tail(first_log + '.out').
            read(), 120, 0.05)
        second = ctx.run(ctx.train_cmd(work, ctx.data), work + '_second')
        done.set()
        first = first.result()
    r = judge('two runs in one work dir', 'train.py (the second)', second, 'in use|another run')
    writers = {(run_of(p) or {}).get('id') for p in checkpoints(work).values()}
    if not (started and first['rc'] == 128 + signal.SIGTERM and len(writers) == 1):
        r.update(
            ok=False,
            last=f'the first run: exit {first["rc"]}; checkpoints of '
            f'{len(writers)} runs; the second: {r["last"]}')
    return [r]


def custom_names(ctx):
    """Checkpoints named ``ckpt_{}.pth`` in an ``out_dir``, the run killed and its
    ``last_checkpoint`` lost: ``--resume`` must continue the highest, not restart."""
    work, out = osp.join(ctx.dir, 'custom_names'), osp.join(ctx.dir, 'custom_out')
    opts = [
        'default_hooks.checkpoint.filename_tmpl=ckpt_{}.pth',
        f'default_hooks.checkpoint.out_dir={out}'
    ]
    ctx.run(ctx.train_cmd(work, ctx.data, *opts, iters=8), work + '_0')
    for folder in (work, out):
        for d, _, names in os.walk(folder):
            if 'last_checkpoint' in names:
                os.remove(osp.join(d, 'last_checkpoint'))
    r = ctx.run(ctx.train_cmd(work, ctx.data, *opts, iters=12, resume=True), work + '_1')
    ok = r['rc'] == 0 and resumed_at(r['out']) == 8
    return row('--resume, custom filename_tmpl and out_dir', 'train.py --resume', r,
               'resume ckpt_8', ok,
               f'resumed at {resumed_at(r["out"])}, exit {r["rc"]}' if ok else r['last'])


# --------------------------------------------------------------------------------- reports
def shim_env(env, **faults):
    """``env`` with :mod:`.fault_shim` first on ``PYTHONPATH`` and its ``faults`` set."""
    path = os.pathsep.join(p for p in (SHIM, env.get('PYTHONPATH')) if p)
    return dict(env, PYTHONPATH=path, **faults)


def report_cases(ctx, only):
    """Writes that fail (injected): training must go on (exit 0, the last checkpoint) with one
    warning; a read-only work dir must stop at once with one line."""
    rows = []
    for fault, pattern, what in [
        ('disk full writing the confusion matrix', '*/confusion_matrix/*', 'confusion matrix'),
        ('disk full writing the scalars log', '*/scalars.json', 'scalars')
    ]:
        if not wanted(only, 'reports', fault):
            continue
        work = osp.join(ctx.dir, re.sub(r'\W+', '_', fault))
        env = shim_env(ctx.env, FCN_FAULT_ENOSPC=pattern)
        r = ctx.run(
            ctx.train_cmd(work, ctx.data, 'train_cfg.val_interval=4', iters=8), work + '_run', env)
        warned = [ln for ln in (r['out'] + r['err']).splitlines() if 'could not write' in ln]
        ok = r['rc'] == 0 and 8 in checkpoints(work) and len(warned) == 1
        rows.append(
            row(
                fault, 'train.py', r, 'one warning, training goes on', ok,
                'exit 0, iter_8 saved, warned once: could ' + warned[0].split('could ', 1)[1][:60]
                if ok else f'{len(warned)} warnings; {r["last"]}'))
    if wanted(only, 'reports', 'read-only work dir'):
        work = osp.join(ctx.dir, 'read_only')
        os.makedirs(work)
        env = shim_env(ctx.env, FCN_FAULT_EROFS=work)
        r = ctx.run(ctx.train_cmd(work, ctx.data, iters=4), work + '_run', env)
        rows.append(judge('read-only work dir', 'train.py', r, 'read-only|writ'))
    return rows


# ---------------------------------------------------------------------------------- inputs
def tagged_copy(ctx, name, orientation, upright):
    """A copy of the toy data whose first train image (a non-square one) carries EXIF
    orientation ``orientation``; its label drawn on the image as displayed (``upright``) or on
    the stored pixels. Returns (data folder, the image's path)."""
    data = osp.join(ctx.dir, name)
    shutil.copytree(ctx.data, data)
    split = osp.join(data, 'ImageSets', 'Segmentation')
    with open(osp.join(split, 'train.txt')) as f:
        names = f.read().split()
    jpgs = [osp.join(data, 'JPEGImages', n + '.jpg') for n in names]
    sizes = [Image.open(p).size for p in jpgs]
    index = next((i for i, (w, h) in enumerate(sizes) if w != h), 0)
    with open(osp.join(split, 'train.txt'), 'w') as f:  # the tagged one first, in both splits
        f.write('\n'.join([names[index]] + names[:index] + names[index + 1:]) + '\n')
    shutil.copy(osp.join(split, 'train.txt'), osp.join(split, 'val.txt'))
    pixels = np.array(Image.open(jpgs[index]).convert('RGB'))
    if upright:  # stored so that the tag turns them back into what the label was drawn on
        turns = {3: 2, 6: 1, 8: 3}.get(orientation, 0)  # np.rot90: counter-clockwise
        pixels = np.ascontiguousarray(np.rot90(pixels, turns))
    exif = Image.Exif()
    exif[274] = orientation
    Image.fromarray(pixels).save(jpgs[index], quality=95, exif=exif)
    return data, jpgs[index]


def check(ctx, data, log):
    return ctx.run(
        ctx.tool('check_dataset.py', ctx.config, '--workers', '1', '--cfg-options',
                 *data_options(data)), log)


def input_cases(ctx, only):
    rows = []
    for fault, orientation, upright in [('EXIF 3, label on stored pixels', 3, False),
                                        ('EXIF 6, label on stored pixels', 6, False),
                                        ('EXIF 6, label drawn upright', 6, True)]:
        if not wanted(only, 'inputs', fault):
            continue
        data, image = tagged_copy(ctx, 'data_' + re.sub(r'\W+', '_', fault), orientation, upright)
        r = check(ctx, data, data + '_check')
        named = [
            ln.strip() for ln in (r['out'] + r['err']).splitlines()
            if osp.basename(image) in ln and 'EXIF' in ln
        ]
        if orientation == 6 and not upright:  # refused: the sizes differ as loaded
            ok = r['rc'] > 0 and bool(named) and '(274) = 6' in named[0]
            expected = 'error naming the file and the tag'
        else:  # loaded turned as the tag says: a warning naming it
            ok = r['rc'] == 0 and bool(named)
            expected = 'warning naming the file (exit 0)'
        rows.append(row(fault, 'check_dataset.py', r, expected, ok, (named or [r['last']])[0]))
    for fault, lines in [('split file listing an image 9 times', 9), ('empty split file', 0)]:
        if not wanted(only, 'inputs', fault):
            continue
        data = osp.join(ctx.dir, 'data_' + re.sub(r'\W+', '_', fault))
        shutil.copytree(ctx.data, data)
        split = osp.join(data, 'ImageSets', 'Segmentation', 'train.txt')
        with open(split) as f:
            names = f.read().split()
        with open(split, 'w') as f:
            f.write(''.join(f'{names[0]}\n'
                            for _ in range(lines)) + ''.join(f'{n}\n' for n in names[1:] if lines))
        r = check(ctx, data, data + '_check')
        if lines:
            named = [ln.strip() for ln in r['out'].splitlines() if names[0] in ln and '9' in ln]
            rows.append(
                row(fault, 'check_dataset.py', r, 'warning naming it (exit 0)', r['rc'] == 0
                    and named, (named or [r['last']])[0]))
        else:
            named = [ln.strip() for ln in r['out'].splitlines() if ln.strip().startswith(split)]
            rows.append(
                judge(fault, 'check_dataset.py', r, 'empty|no samples', (named or [''])[0], split))
            r = ctx.run(ctx.train_cmd(data + '_train', data, iters=2), data + '_train')
            rows.append(judge(fault, 'train.py', r, 'empty|no samples', None, split))
    for fault, option, pattern in [("iou_metrics=['mDice']", "val_evaluator.iou_metrics=['mDice']",
                                    r'iou_metrics.*mDice|mDice.*iou_metrics'),
                                   ('per_image_iuo=True', 'val_evaluator.per_image_iuo=True',
                                    'per_image_iuo')]:
        if wanted(only, 'inputs', fault):
            work = osp.join(ctx.dir, 'args_' + re.sub(r'\W+', '_', fault))
            r = ctx.run(ctx.train_cmd(work, ctx.data, option, iters=2), work)
            rows.append(judge(f'FCNMetric {fault}', 'train.py', r, pattern))
    rows += infer_cases(ctx, only)
    return rows


def infer_cases(ctx, only):
    """``tools/infer.py`` on a folder holding ``a.jpg`` and ``a.png``."""
    images = osp.join(ctx.dir, 'infer_in')
    os.makedirs(images)
    first = sorted(os.listdir(osp.join(ctx.data, 'JPEGImages')))[0]
    shutil.copy(osp.join(ctx.data, 'JPEGImages', first), osp.join(images, 'a.jpg'))
    Image.open(osp.join(images, 'a.jpg')).save(osp.join(images, 'a.png'))
    saved = osp.join(ctx.dir, 'infer_in_copy')
    shutil.copytree(images, saved)

    def infer(out, *extra, log):
        return ctx.run(
            ctx.tool('infer.py', ctx.config, ctx.reference, images, '--out', out, *extra),
            osp.join(ctx.dir, log))

    def inputs_kept():
        return not filecmp.dircmp(images, saved).diff_files and sorted(
            os.listdir(images)) == sorted(os.listdir(saved))

    rows, out = [], osp.join(ctx.dir, 'infer_out')
    if wanted(only, 'inputs', 'infer.py --out = the input folder'):
        r = infer(images, log='infer_same')
        row_ = judge('infer.py --out = the input folder', 'infer.py', r, 'input folder')
        rows.append(row_ if inputs_kept() else dict(row_, ok=False, last='INPUT CHANGED'))
    if wanted(only, 'inputs', 'a.jpg and a.png in one folder'):
        r = infer(out, log='infer_both')
        labels = sorted(n for n in os.listdir(out)
                        if not n.endswith('_overlay.png')) if osp.isdir(out) else []
        rows.append(
            row('a.jpg and a.png in one folder', 'infer.py', r, 'two results', r['rc'] == 0
                and len(labels) == 2, f'label PNGs {labels}'))
        before = files_of(out)
        r = infer(out, log='infer_again')
        row_ = judge('infer.py again into the same --out', 'infer.py', r, 'exist|overwrite')
        rows.append(
            row_ if files_of(out) ==
            before else dict(row_, ok=False, last='OUTPUTS REPLACED: ' + row_['last']))
    return rows
