// Generated from the form model (crate coform-model) — do not edit.
// Regenerate: COFORM_REGENERATE=1 cargo test -p coform-model

/** Every component type, in the palette's order. */
export const COMPONENT_TYPES = ['text', 'textarea', 'number', 'email', 'phone', 'date', 'select', 'radio', 'checkbox', 'file', 'section', 'heading', 'paragraph', 'button'] as const

/** Most components in one template. */
export const MAX_COMPONENTS = 2000

/** Deepest nesting of sections. */
export const MAX_DEPTH = 16

/** Most characters of a component id. */
export const MAX_ID_CHARS = 100

/** Most characters of an `index`. */
export const MAX_INDEX_CHARS = 100

/** Most options of a choice component. */
export const MAX_OPTIONS = 500

/** A component type the server knows. */
export type KnownComponentType = typeof COMPONENT_TYPES[number]

/** What every input's `properties` has. */
export interface InputPropertiesCommon {
  /** Field name: The field's name in submitted data; the component's id when absent. */
  name?: string
  /** Help text: Shown under the field. */
  helpText?: string
  /** Disabled */
  disabled?: boolean
  /** Read-only */
  readOnly?: boolean
  /** Hidden */
  hidden?: boolean
  /** Default from a data source: Reads the default value from a data source (the static default is the fallback). */
  defaultSource?: DefaultSource
}

/** Template-wide fields. Keys beyond these are kept as they are (any JSON nested at most 16 levels). */
export interface Meta {
  /** Name */
  name?: string
  /** Description */
  description?: string
  /** Tags: Short labels to find templates by. */
  tags?: Array<string>
  /** Category */
  category?: string
  [key: string]: unknown
}

/** Where the designer placed a component on its canvas. */
export interface Position {
  x?: number
  y?: number
  w?: number
  h?: number
}

/** Look of a component. */
export interface Styling {
  /** Theme */
  theme?: string
  /** Custom styles: CSS property name (letters, digits, `-`) → value. */
  customStyles?: Record<string, string>
}

/** Properties of a one-line text input (`text`, `email`, `phone`). */
export interface TextProperties extends InputPropertiesCommon {
  /** Placeholder: Shown in the empty field. */
  placeholder?: string
  /** Default value */
  defaultValue?: string
  /** Autocomplete: A browser autofill hint (`name`, `email`, `tel`, ...). */
  autocomplete?: string
}

/** Default from a data source: An input's default value read from a data source of the workspace: the value at `path` in the answer of the source executed with `params`. The static `defaultValue`, if any, is the fallback. */
export interface DefaultSource {
  /** Data source: The data source's id (in the template's workspace). */
  dataSourceId: string
  /** Parameters: Literal values for the source's `{{name}}` placeholders. */
  params?: Record<string, string>
  /** Path to the value: Dot path to the value in the answer (`data.user.email`); the answer itself when absent. */
  path?: string
}

/** Validation rules of free-text inputs. */
export interface TextValidation extends InputValidation {
  /** Shortest */
  minLength?: number
  /** Longest */
  maxLength?: number
  /** Pattern: A JavaScript regular expression the answer must match: data, never compiled by the server. */
  pattern?: string
}

/** Properties of a multi-line text input. */
export interface TextareaProperties extends InputPropertiesCommon {
  /** Placeholder: Shown in the empty field. */
  placeholder?: string
  /** Default value */
  defaultValue?: string
  /** Rows: Visible lines. */
  rows?: number
}

/** Properties of a number input. */
export interface NumberProperties extends InputPropertiesCommon {
  /** Placeholder: Shown in the empty field. */
  placeholder?: string
  /** Default value */
  defaultValue?: number
  /** Minimum: Lowest value the control offers (`min` ≤ `max`). */
  min?: number
  /** Maximum: Highest value the control offers. */
  max?: number
  /** Step: Increment of the control. */
  step?: number
}

/** Validation rules of a number input. */
export interface NumberValidation extends InputValidation {
  /** Minimum */
  min?: number
  /** Maximum */
  max?: number
}

/** Properties of a date input. */
export interface DateProperties extends InputPropertiesCommon {
  /** Default value */
  defaultValue?: IsoDate
  /** Earliest: Earliest date the control offers (`min` ≤ `max`). */
  min?: IsoDate
  /** Latest: Latest date the control offers. */
  max?: IsoDate
}

export type IsoDate = string

/** Validation rules of a date input. */
export interface DateValidation extends InputValidation {
  /** Earliest */
  min?: IsoDate
  /** Latest */
  max?: IsoDate
}

/** Properties of a drop-down list. */
export interface SelectProperties extends InputPropertiesCommon {
  /** Placeholder: Shown while nothing is chosen. */
  placeholder?: string
  /** Options: At least one, with distinct values. */
  options: Array<Choice>
  /** Options from a data source: Reads the options from a data source (the static `options` are the fallback). */
  optionsSource?: OptionsSource
  /** Multiple: Several options may be chosen. */
  multiple?: boolean
  /** Default value: An option's value; an array of them when `multiple`. */
  defaultValue?: Selection
}

/** One option of a select, radio group or checkbox group. */
export interface Choice {
  /** What is submitted; distinct within a component. */
  value: string
  /** What is shown; the value when absent. */
  label?: string
}

/** Options from a data source: A component's options read from a data source of the workspace: the source is executed with `params`, the array at `path` in its answer becomes the options (each item's `valueKey` and `labelKey`). The static `options` stay the fallback shown while the source cannot be reached, so a bound form never shows an empty list. */
export interface OptionsSource {
  /** Data source: The data source's id (in the template's workspace). */
  dataSourceId: string
  /** Parameters: Literal values for the source's `{{name}}` placeholders. */
  params?: Record<string, string>
  /** Path to the list: Dot path to the array in the answer (`data.items`); the answer itself when absent. */
  path?: string
  /** Label key: Key (or dot path) of each item shown as the option's label; the value when absent. */
  labelKey?: string
  /** Value key: Key (or dot path) of each item submitted as the option's value; the item itself (a string or number) when absent. */
  valueKey?: string
}

/** A select's default: one option value, or several when `multiple`. */
export type Selection = string | Array<string>

/** Validation rules of inputs without length or range rules. */
export interface InputValidation {
  /** Required: The person filling the form must answer. */
  required?: boolean
  /** Error message: Shown when a rule fails. */
  message?: string
  /** Custom rules: Names of custom rules the client knows (never run by the server). */
  rules?: Array<string>
  /** Custom validation: Source of a custom validation function: data, never run by the server. */
  customValidation?: string
}

/** Properties of a group of radio buttons. */
export interface RadioProperties extends InputPropertiesCommon {
  /** Options: At least one, with distinct values. */
  options: Array<Choice>
  /** Options from a data source: Reads the options from a data source (the static `options` are the fallback). */
  optionsSource?: OptionsSource
  /** Default value: An option's value. */
  defaultValue?: string
  /** Layout */
  layout?: Layout
}

/** How options are laid out. */
export type Layout = "vertical" | "horizontal"

/** Properties of a checkbox: a single box without `options`, a group with them. */
export interface CheckboxProperties extends InputPropertiesCommon {
  /** Options: Distinct values; none for a single box. */
  options?: Array<Choice>
  /** Options from a data source: Reads the options from a data source (the static `options` are the fallback). */
  optionsSource?: OptionsSource
  /** Default value: A single box: checked or not; a group: the values checked. */
  defaultValue?: Checked
  /** Layout */
  layout?: Layout
}

/** A checkbox's default: checked or not (a single box), or the option values checked (a group). */
export type Checked = boolean | Array<string>

/** Properties of a file upload. */
export interface FileProperties extends InputPropertiesCommon {
  /** Accepted types: File types: `.ext` or `type/subtype` (subtype may be `*`), comma-separated. */
  accept?: string
  /** Multiple: Several files may be chosen. */
  multiple?: boolean
  /** Largest size (bytes): Largest file, in bytes. */
  maxSize?: number
}

/** Properties of a section: a container of other components. */
export interface SectionProperties {
  /** Hidden */
  hidden?: boolean
  /** Description: Shown under its title. */
  description?: string
  /** Collapsible: The person filling the form may fold it. */
  collapsible?: boolean
}

/** Components that collect nothing have no validation rules. */
export interface NoValidation {}

/** Properties of a heading. */
export interface HeadingProperties {
  /** Hidden */
  hidden?: boolean
  /** Text: Its text; the label when absent. */
  text?: string
  /** Level: 1 (largest) to 6. */
  level?: number
}

/** Properties of a paragraph of text. */
export interface ParagraphProperties {
  /** Hidden */
  hidden?: boolean
  /** Text */
  text?: string
}

/** Properties of a button. */
export interface ButtonProperties {
  /** Hidden */
  hidden?: boolean
  /** Disabled */
  disabled?: boolean
  /** Text: Its text; the label when absent. */
  text?: string
  /** Action */
  action?: ButtonAction
}

/** What a button does. */
export type ButtonAction = "submit" | "reset" | "button"

/** What every component has besides its type-specific fields. */
export interface ComponentCommon {
  /** Equals the component's key in `components`: 1–100 characters without spaces or control characters. */
  id: string
  /** Label */
  label?: string
  /** The `section` it sits in; `null` or absent at the top level. */
  parent?: string | null
  /** Fractional index: order among siblings, compared byte by byte, then by id. */
  index: string
  /** Where the designer placed it on its canvas. */
  position?: Position
  /** Its look. */
  styling?: Styling
}

/** Short text: One line of text. */
export interface TextComponent extends ComponentCommon {
  type: "text"
  properties?: TextProperties
  validation?: TextValidation
}

/** Long text: Several lines of text. */
export interface TextareaComponent extends ComponentCommon {
  type: "textarea"
  properties?: TextareaProperties
  validation?: TextValidation
}

/** Number: A number. */
export interface NumberComponent extends ComponentCommon {
  type: "number"
  properties?: NumberProperties
  validation?: NumberValidation
}

/** E-mail: An e-mail address. */
export interface EmailComponent extends ComponentCommon {
  type: "email"
  properties?: TextProperties
  validation?: TextValidation
}

/** Phone: A phone number. */
export interface PhoneComponent extends ComponentCommon {
  type: "phone"
  properties?: TextProperties
  validation?: TextValidation
}

/** Date: A calendar date. */
export interface DateComponent extends ComponentCommon {
  type: "date"
  properties?: DateProperties
  validation?: DateValidation
}

/** Drop-down: One (or several) of a list, in a drop-down. */
export interface SelectComponent extends ComponentCommon {
  type: "select"
  properties?: SelectProperties
  validation?: InputValidation
}

/** Radio buttons: One of a list of radio buttons. */
export interface RadioComponent extends ComponentCommon {
  type: "radio"
  properties?: RadioProperties
  validation?: InputValidation
}

/** Checkboxes: A single checkbox, or a group of them. */
export interface CheckboxComponent extends ComponentCommon {
  type: "checkbox"
  properties?: CheckboxProperties
  validation?: InputValidation
}

/** File upload: A file upload. */
export interface FileComponent extends ComponentCommon {
  type: "file"
  properties?: FileProperties
  validation?: InputValidation
}

/** Section: A container: other components name it as their `parent`. */
export interface SectionComponent extends ComponentCommon {
  type: "section"
  properties?: SectionProperties
  validation?: NoValidation
}

/** Heading: A heading. */
export interface HeadingComponent extends ComponentCommon {
  type: "heading"
  properties?: HeadingProperties
  validation?: NoValidation
}

/** Paragraph: A paragraph of text. */
export interface ParagraphComponent extends ComponentCommon {
  type: "paragraph"
  properties?: ParagraphProperties
  validation?: NoValidation
}

/** Button: A button. */
export interface ButtonComponent extends ComponentCommon {
  type: "button"
  properties?: ButtonProperties
  validation?: NoValidation
}

/** One component of a template's content, by its `type`. */
export type ComponentData =
  | TextComponent
  | TextareaComponent
  | NumberComponent
  | EmailComponent
  | PhoneComponent
  | DateComponent
  | SelectComponent
  | RadioComponent
  | CheckboxComponent
  | FileComponent
  | SectionComponent
  | HeadingComponent
  | ParagraphComponent
  | ButtonComponent

/** The `properties` of each component type. */
export interface PropertiesByType {
  text: TextProperties
  textarea: TextareaProperties
  number: NumberProperties
  email: TextProperties
  phone: TextProperties
  date: DateProperties
  select: SelectProperties
  radio: RadioProperties
  checkbox: CheckboxProperties
  file: FileProperties
  section: SectionProperties
  heading: HeadingProperties
  paragraph: ParagraphProperties
  button: ButtonProperties
}

/** The `validation` rules of each component type. */
export interface ValidationByType {
  text: TextValidation
  textarea: TextValidation
  number: NumberValidation
  email: TextValidation
  phone: TextValidation
  date: DateValidation
  select: InputValidation
  radio: InputValidation
  checkbox: InputValidation
  file: InputValidation
  section: NoValidation
  heading: NoValidation
  paragraph: NoValidation
  button: NoValidation
}

/** Template content: A template's content: `doc.getMap("meta")` and `doc.getMap("components")` as JSON. A missing root means empty. */
export interface TemplateContentData {
  meta?: Meta
  /** Component id → component. Each component's `id` equals its key. */
  components?: Record<string, ComponentData>
}
