# Your own data: images and index-label PNGs in folders (CustomSegDataset = mmseg's
# BaseSegDataset with clear errors for missing folders, images without labels and wrong
# suffixes). Copy configs/fcn8s_vgg16_custom.py and set its variables, or set the nested keys
# in a child config.
# Layout (folder names and suffixes are variables):
#   <data_root>/images/train/<name><img_suffix>      e.g. images/train/0001.jpg
#   <data_root>/labels/train/<name><seg_map_suffix>  e.g. labels/train/0001.png
#   <data_root>/images/val/..., labels/val/...
# A label holds one class index per pixel: 0..K-1, and 255 for void (ignored in the loss and the
# metrics). Masks saved as 0/255, grey levels or colours are NOT labels (a 0/255 mask makes the
# whole foreground void): convert them with
#   python tools/dataset_converters/masks2labels.py <masks folder> <labels folder> [--palette ...]
# As in the FCN recipe: full images, batch 1, no augmentation and no resizing.
dataset_type = 'CustomSegDataset'
data_root = 'data/my_dataset'
classes = ('background', 'foreground')  # class i = label value i
palette = [[0, 0, 0], [255, 255, 255]]  # one RGB colour per class (overlays, visualisation)
img_suffix = '.jpg'
seg_map_suffix = '.png'
train_prefix = dict(img_path='images/train', seg_map_path='labels/train')
val_prefix = dict(img_path='images/val', seg_map_path='labels/val')
train_split = ''  # optional split files (names without suffix, one a line); '' = whole folder
val_split = ''
# CheckSegFiles/CheckSegSample (fcn_plugin.datasets.transforms): a missing, empty, truncated or
# corrupt file, a label value outside 0..K-1/255 (K = len(classes), filled in by the dataset) or
# a label/image size mismatch stops with one error naming the file. In test_pipeline
# LoadImageFromFile stays first: mmseg's inference API replaces the first step.
train_pipeline = [
    dict(type='CheckSegFiles'),
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CheckSegFiles'),
    dict(type='LoadAnnotations'),
    dict(type='CheckSegSample'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    # InfiniteSampler's order; --resume starts it at the resumed iteration without loading data
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=train_prefix,
        ann_file=train_split,
        img_suffix=img_suffix,
        seg_map_suffix=seg_map_suffix,
        metainfo=dict(classes=classes, palette=palette),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=val_prefix,
        ann_file=val_split,
        img_suffix=img_suffix,
        seg_map_suffix=seg_map_suffix,
        metainfo=dict(classes=classes, palette=palette),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# Pixel acc., mean acc., mean IU, f.w. IU from one dataset-level confusion matrix (paper sec. 5).
val_evaluator = dict(type='FCNMetric')
test_evaluator = val_evaluator
